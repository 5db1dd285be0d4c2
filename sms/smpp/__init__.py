"""A small SMPP 3.4 client: the PDUs we send and read (`pdu`), message text (`text`) and one
asyncio session that binds, keeps the link and reconnects (`session`).

Ours rather than aiosmpplib 0.7.4 (judged for issue 15): its header parser turns any
command_status outside the spec's table into ValueError, so one vendor error code
(0x400-0x4FF, common on Chinese gateways) drops the whole session; it joins multi-part MO
messages only by SAR TLVs, not by the UDH handsets use, keyed by reference alone; it cannot
decode data_coding 15 (GBK); and its queue-and-hook design gives a send no answer of its own
(a send waiting for a bind stays queued and goes out later, after we told the caller it
failed, so a retry sends it twice).
"""
