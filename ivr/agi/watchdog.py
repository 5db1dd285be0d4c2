"""One reply timer per event loop for every channel waiting on Asterisk (see `_Watchdog`)."""

from __future__ import annotations

import asyncio
import weakref
from typing import Protocol


class _Reading(Protocol):
    reader: asyncio.StreamReader


WATCH_TICK_S = 0.5  # how often the watchdog looks for replies past their time


class _NoReply(Exception):
    """Raised into a channel's pending read by the watchdog: the reply's time is up."""


class _Watchdog:
    """One timer per event loop for every channel waiting on a reply.

    A per-read `asyncio.timeout` cost a timer, a heap push and a cancel per AGI command: 7 %
    of the server under a burst (bench/ivr_bench.py). Reply limits are tens of seconds, so a
    deadline checked every WATCH_TICK_S does: a read past it gets `_NoReply` raised into it
    through its StreamReader, and the channel reports the hang-up as before.
    """

    # No reference to its loop, not even through its timer's handle (the loop is asked for at
    # each call, always from inside it): the registry below is keyed weakly by loop, and a
    # value holding its key would keep every loop that ever ran a channel (one per test) alive.
    def __init__(self) -> None:
        self.waiting: dict[_Reading, float] = {}
        self._ticking = False

    def watch(self, channel: _Reading, limit_s: float) -> None:
        loop = asyncio.get_running_loop()
        self.waiting[channel] = loop.time() + limit_s
        if not self._ticking:
            self._ticking = True
            loop.call_later(WATCH_TICK_S, self._tick)

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        late = [channel for channel, deadline in self.waiting.items() if deadline <= now]
        for channel in late:
            del self.waiting[channel]
            channel.reader.set_exception(_NoReply())
        self._ticking = bool(self.waiting)
        if self._ticking:
            loop.call_later(WATCH_TICK_S, self._tick)


_watchdogs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watchdog] = (
    weakref.WeakKeyDictionary()
)


def _watchdog() -> _Watchdog:
    loop = asyncio.get_running_loop()
    found = _watchdogs.get(loop)
    if found is None:
        found = _watchdogs[loop] = _Watchdog()
    return found
