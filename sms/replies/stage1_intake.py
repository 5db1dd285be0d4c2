"""Stage 1 of the reply pipeline, intake: a reply is stored, then handled, never handled unstored.

The webhook stores each reply (one row per MessageSid, claimed by this process; replies that
arrive together share one INSERT and one commit, rating/db/batching.py) and answers Twilio at
once; the reply is then queued for handling in the background. Replies are handled in
batches, one batch at a time per process: those that arrive while a batch is being handled go
together in the next (up to HANDLE_BATCH), through the pipeline's `process_many`
(sms/replies/pipeline.py), which the intake is handed as a callable. A reply that fails
does not fail its batch: it stays stored and claimed. Should the process die, or a reply fail,
before it was handled, the reply is still there: the `sms_inbox` sweep takes over replies whose
claim is older than STALE_CLAIM and handles them. A provider's retry of a stored MessageSid
changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from rating.db.batching import Batcher
from rating.errors import InvalidInput
from rating.privacy import mask_text, normalize_phone
from sms.context import SmsContext
from sms.log import log
from sms.replies.outcome import InboundResult
from sms.storage.inbox import InboxRepository

STALE_CLAIM = timedelta(minutes=2)  # a claim older than this died with its process
HANDLE_BATCH = 100  # replies handled together at most
SWEEP_BATCH = 100
STORE_LINGER_S = 0.002
SWEEP_MAX = 5000  # replies one sweep run handles at most, so other sweeps get their turn
MAX_EXTENSION = 32  # digits of an extension code kept (sms_inbound.extension); longer: none


@dataclass(frozen=True)
class Received:
    """A stored reply, claimed by this process (row_id 0: not stored yet). The sender's keyed
    hash and ciphertext go with it, computed once: the inbox and our answer reuse them."""

    sid: str
    phone: str
    phone_hash: str
    phone_enc: str
    to: str
    body: str
    at: datetime
    row_id: int = 0
    extension: str | None = None  # the 扩展码: given apart by the provider, or read from `to`


# The later stages, as the pipeline hands them in: handle a batch (answering now or from the
# background), and wait for the answers being sent.
HandleBatch = Callable[[Sequence[Received], bool], Awaitable[list[InboundResult | Exception]]]
DrainAnswers = Callable[[], Awaitable[None]]


class Intake:
    """Stores replies and hands them to the rest of the pipeline; built by the pipeline."""

    def __init__(self, ctx: SmsContext, handle: HandleBatch, drain_answers: DrainAnswers) -> None:
        self.ctx = ctx
        self._handle_batch = handle
        self._drain_answers = drain_answers
        # 2 ms of linger: Twilio waits that much longer for its 200, and a burst's replies
        # share an INSERT and a commit instead of going two by two (bench/sms_bench.py).
        self._store: Batcher[Received, int | None] = Batcher(self._insert, linger_s=STORE_LINGER_S)
        self._batches: Batcher[Received, InboundResult] = Batcher(
            self._process, max_batch=HANDLE_BATCH
        )
        self._handling: set[asyncio.Task[None]] = set()
        # Queued (PINGJIA_SMS_REPLIES=queued): the webhook only stores; replies are stored
        # already claimable, and the `sms_inbox` sweep of whichever process runs the
        # scheduler handles them within a second (docs/sms.md).
        self.queued = False

    async def accept(
        self,
        sid: str,
        sender: str,
        to: str,
        body: str,
        now: datetime,
        *,
        extension: str | None = None,
    ) -> Received | InboundResult:
        """Store a reply; the stored reply, or why there is nothing to handle. `extension`:
        the 扩展码 when the provider gave it apart from `to`, else the provider reads it from
        `to`; stored in a column of its own, so whoever handles the row has it."""
        try:
            phone = normalize_phone(sender)
        except InvalidInput:
            log.warning("sms reply from an unusable sender ignored", sid=sid)
            return InboundResult("bad_sender")
        vault = self.ctx.vault
        code = extension or (self.ctx.provider.extension(to) if to else None)
        received = Received(
            sid,
            phone,
            vault.lookup_hash(phone),
            vault.encrypt(phone),
            to,
            body,
            now,
            0,
            code if code and code.isdigit() and len(code) <= MAX_EXTENSION else None,
        )
        row_id = await self._store.submit(received)
        if row_id is None:
            return InboundResult("duplicate")
        return replace(received, row_id=row_id)

    def start(self, received: Received) -> None:
        """Handle a stored reply in the background, in the next batch (`drain` waits)."""
        task = asyncio.create_task(self._handle(received))
        self._handling.add(task)
        task.add_done_callback(self._handling.discard)

    async def drain(self) -> None:
        """Wait for the replies being handled and their answers (shutdown, tests, benches)."""
        while self._handling:
            await asyncio.gather(*self._handling, return_exceptions=True)
        await self._drain_answers()

    async def resume_stale(self, now: datetime) -> int:
        """The sweep: handle replies whose handler died before finishing (and, queued, every
        stored reply), batch after batch while there are any; how many."""
        total = 0
        while total < SWEEP_MAX and (handled := await self._resume_batch(now)):
            total += handled
        return total

    async def _resume_batch(self, now: datetime) -> int:
        async with self.ctx.sessions() as session:
            rows = await InboxRepository(session).claim_stale(now, now - STALE_CLAIM, SWEEP_BATCH)
            await session.commit()
        stale = [
            Received(
                r.message_sid,
                self.ctx.vault.decrypt(r.phone_enc or ""),
                r.phone_hash,
                r.phone_enc or "",
                r.to_number or "",
                r.body,  # numbers masked: a level, a reason or an opt-out word reads the same
                now,
                r.id,
                r.extension,
            )
            for r in rows
        ]
        for received in stale:
            if not self.queued:
                log.warning("sms reply taken over from a handler that died", sid=received.sid)
        if stale:
            results = await self._handle_batch(stale, True)
            for received, result in zip(stale, results, strict=True):
                if isinstance(result, Exception):
                    _not_handled(received, result)
        return len(stale)

    async def _handle(self, received: Received) -> None:
        try:
            await self._batches.submit(received)
        except Exception as exc:  # stored and claimed: the sweep handles it later
            _not_handled(received, exc)

    async def _process(self, batch: Sequence[Received]) -> list[InboundResult | Exception]:
        return await self._handle_batch(batch, False)

    async def _insert(self, batch: Sequence[Received]) -> list[int | Exception | None]:
        """One INSERT for a batch; a MessageSid seen before (or twice in it) gets None."""
        rows, seen = [], set()
        for r in batch:
            if r.sid in seen:
                continue
            seen.add(r.sid)
            rows.append(
                {
                    "message_sid": r.sid,
                    "phone_hash": r.phone_hash,
                    "phone_enc": r.phone_enc,
                    "to_number": r.to[:64],
                    "extension": r.extension,
                    "body": mask_text(r.body)[:1000],
                    "received_at": r.at,
                    # Claimed by this process now; queued, claimable by any sweep at once.
                    "claimed_at": r.at - STALE_CLAIM if self.queued else r.at,
                }
            )
        async with self.ctx.sessions() as session:
            if session.get_bind().dialect.name == "postgresql":
                # One statement there (`InboxRepository.accept`), atomic by itself: run without
                # BEGIN and COMMIT, it is one round trip instead of three, each a send and a
                # wait for the server (the webhook's latency under a burst, sms_bench.py).
                await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            ids = await InboxRepository(session).accept(rows)
            await session.commit()
        results: list[int | Exception | None] = []
        for r in batch:
            results.append(ids.pop(r.sid, None))  # the first of a repeated sid takes the row
        return results


def _not_handled(received: Received, exc: Exception) -> None:
    log.error("sms reply not handled yet", sid=received.sid, error=str(exc)[:200])
