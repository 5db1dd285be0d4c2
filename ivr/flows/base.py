"""What every flow shares: its context (handed down by the composition root) and its shape."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ivr.agi.channel import Digits, Recording
from ivr.agi.protocol import ScriptRequest
from rating.profile import Profile
from rating.service import RatingService

PROMPT_ROOT = "pingjia"  # prompts live in Asterisk's sounds dir under pingjia/<language>/
RECORDINGS_DIR = "/var/spool/asterisk/monitor/pingjia"


class ChannelLike(Protocol):
    """The channel methods flows use; ivr.agi.Channel and the test fakes provide them."""

    @property
    def uniqueid(self) -> str: ...

    env: dict[str, str]

    async def stream_file(self, name: str, escape: str = "") -> str | None: ...
    async def get_data(self, name: str, timeout_ms: int, max_digits: int) -> Digits: ...
    async def wait_for_digit(self, timeout_ms: int) -> str | None: ...
    async def record_file(
        self, path: str, fmt: str, escape: str, max_ms: int, *, beep: bool, silence_s: int
    ) -> Recording: ...
    async def set_variable(self, name: str, value: str) -> None: ...
    async def hangup(self) -> None: ...


@dataclass
class IvrContext:
    """Services a flow may use; built once by the composition root."""

    ratings: RatingService
    clock: Callable[[], datetime]
    recordings_dir: str = RECORDINGS_DIR
    save_attempts: int = 3
    save_backoff_s: float = 0.5
    on_rating: Callable[[str, int], None] | None = None
    # Ratings being written; held here so a write outlives the call that started it.
    writes: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def profile(self) -> Profile:
        return self.ratings.profile

    def prompt(self, prompt_id: str) -> str:
        """The file name Asterisk plays for a prompt id (no extension: Asterisk picks one)."""
        return f"{PROMPT_ROOT}/{self.profile.prompt_language}/{prompt_id}"


@dataclass(frozen=True)
class Flow:
    """One AGI script: its name in the dialplan, how to run it, the prompts it plays."""

    name: str
    run: Callable[[ChannelLike, ScriptRequest, IvrContext], Awaitable[None]]
    # prompt id -> its text when the text comes from the profile, None when from prompts.toml
    prompts: Callable[[Profile], dict[str, str | None]]
