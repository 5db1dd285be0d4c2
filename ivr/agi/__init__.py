"""Our typed layer over FastAGI: the wire format, the channel, the errors."""

from ivr.agi.channel import AgiError, Channel, Digits, Hangup, Recording
from ivr.agi.protocol import ProtocolError, Reply, ScriptRequest, script_request

__all__ = [
    "AgiError",
    "Channel",
    "Digits",
    "Hangup",
    "ProtocolError",
    "Recording",
    "Reply",
    "ScriptRequest",
    "script_request",
]
