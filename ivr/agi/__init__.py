"""Our typed layer over FastAGI: the wire format, the channel, the errors."""

from ivr.agi.channel import AgiError, Channel, Hangup
from ivr.agi.protocol import ProtocolError, Reply, ScriptRequest, script_request
from ivr.agi.results import PROMPT_MISSING, ChannelReport, Digits, Recording

__all__ = [
    "PROMPT_MISSING",
    "AgiError",
    "Channel",
    "ChannelReport",
    "Digits",
    "Hangup",
    "ProtocolError",
    "Recording",
    "Reply",
    "ScriptRequest",
    "script_request",
]
