"""What every flow shares: its context, the call's state, the step runner, and the write.

A flow is a `Step` enum plus a table step -> handler; `run_steps` walks it. The rating is
written once, by `start_write` (a task, so the thank-you plays over it); `thanking` sends
HANGUP only once that write has committed, and every session ends only after its database
work: `run_steps`'s `finally` starts the write for a caller who hung up after the level and
awaits it, shielded (docs/ivr.md, "When the rating is written").
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Protocol, TypeVar

import structlog

from ivr.agi.protocol import ScriptRequest
from ivr.agi.results import Digits, Recording
from ivr.flows.cases import CallCases, Ratings, save_rating
from rating.policy.profile import Profile, Tag

log = structlog.get_logger("pingjia.ivr")

PROMPT_ROOT = "pingjia"  # prompts live in Asterisk's sounds dir under pingjia/<language>/
RECORDINGS_DIR = "/var/spool/asterisk/monitor/pingjia"
DB_SLOTS = 10  # database operations in flight from the IVR; the composition root sizes it
# After the thank-you, how long a thanked caller may hear silence while the write commits
# (a database that stalls: retries, a pool checkout); then HANGUP goes anyway.
COMMIT_WAIT_S = 10.0


class ChannelLike(Protocol):
    """The channel methods flows use; ivr.agi.Channel and the test fakes provide them."""

    @property
    def uniqueid(self) -> str: ...

    env: dict[str, str]
    peer: str  # the Asterisk host's address, as the connection shows it

    async def stream_file(self, name: str, escape: str = "") -> str | None: ...
    async def get_data(self, name: str, timeout_ms: int, max_digits: int) -> Digits: ...
    async def wait_for_digit(self, timeout_ms: int) -> str | None: ...
    async def record_file(
        self, path: str, fmt: str, escape: str, max_ms: int, *, beep: bool, silence_s: int
    ) -> Recording: ...
    async def set_variable(self, name: str, value: str) -> None: ...
    async def hangup(self) -> None: ...


Menu = dict[str, Tag]  # keypad digit -> reason tag


def reason_menu(profile: Profile, level: int) -> Menu:
    """The reason menu of a level: keypad digit -> tag (tags without a digit are web-only)."""
    return {str(t.digit): t for t in profile.tags_for(level) if t.digit is not None}


@dataclass
class IvrContext:
    """Services a flow may use, and the profile it follows; built once by the composition
    root (a test builds it with a scripted rating service and no database)."""

    ratings: Ratings
    clock: Callable[[], datetime]
    profile: Profile
    recordings_dir: str = RECORDINGS_DIR
    save_attempts: int = 3
    save_backoff_s: float = 0.5
    commit_wait_s: float = COMMIT_WAIT_S
    on_rating: Callable[[str, int], None] | None = None
    # Admission limit for the lookups that are not batched (the survey's case): a burst of
    # calls queues here, in our process, instead of timing out on the pool's checkout (30 s);
    # sized to the pool by the composition root. Case checks and ratings need none: the
    # domain batches them (rating/db/batching.py).
    db_slots: int = DB_SLOTS
    # Database work started by calls (case checks, rating writes); held here so it outlives
    # a cancelled call, and so a shutdown can wait for it before closing the database.
    writes: set[asyncio.Task[Any]] = field(default_factory=set)
    _slots: asyncio.Semaphore | None = field(default=None, init=False, repr=False)
    # Each level's reason menu, made once per context (a call asks for it up to four times).
    _menus: dict[int, Menu] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._menus = {level: reason_menu(self.profile, level) for level in range(1, 6)}

    def menu(self, level: int) -> Menu:
        """The reason menu of `level` under this context's profile (empty: no menu)."""
        return self._menus.get(level) or reason_menu(self.profile, level)

    @property
    def database(self) -> asyncio.Semaphore:
        """Hold one of `db_slots` for each database operation (`async with ctx.database`)."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.db_slots)
        return self._slots

    def prompt(self, prompt_id: str) -> str:
        """The file name Asterisk plays for a prompt id (no extension: Asterisk picks one)."""
        return f"{PROMPT_ROOT}/{self.profile.prompt_language}/{prompt_id}"

    def track(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(work)
        self.writes.add(task)
        task.add_done_callback(self.writes.discard)
        return task

    async def drain(self, grace: float) -> int:
        """Wait up to `grace` s for the calls' database work; how many tasks were left."""
        if not self.writes:
            return 0
        _, pending = await asyncio.wait(set(self.writes), timeout=grace)
        if pending:
            log.error("ivr database work still running at shutdown", tasks=len(pending))
        return len(pending)


@dataclass(frozen=True)
class Flow:
    """One AGI script: its name in the dialplan, how to run it, the prompts it plays."""

    name: str
    run: Callable[[ChannelLike, ScriptRequest, IvrContext], Awaitable[None]]
    # prompt id -> its text when the text comes from the profile, None when from prompts.toml
    prompts: Callable[[Profile], dict[str, str | None]]


Statuses = list[str] | None  # the cases' statuses; None: not known (the check failed)


@dataclass
class RatingCall:
    """What the caller has given so far, and the database work the call started."""

    cases: CallCases
    uniqueid: str
    level: int | None = None
    tags: list[str] = field(default_factory=list)
    voice_ref: str | None = None
    tries: int = 0
    saved: bool = False
    # The start-of-call case check (rating flow), running while the greeting plays.
    check: asyncio.Task[Statuses] | None = None
    write: asyncio.Task[None] | None = None  # the rating's write, overlapping the thank-you
    stored: int = 0  # how many cases the saved rating reached
    # The write ended without storing the rating (refused by the domain, or the database
    # failed every attempt): the cases stay pending, and the caller is told so.
    lost: bool = False

    def already_rated(self) -> bool:
        """The check has finished and found no case still pending (False while it runs)."""
        if self.check is None or not self.check.done() or self.check.cancelled():
            return False
        statuses = self.check.result()
        return statuses is not None and "pending" not in statuses

    def check_failed(self) -> bool:
        """The start-of-call check has answered that the database could not be reached."""
        check = self.check
        if check is None or not check.done() or check.cancelled():
            return False
        return check.result() is None


S = TypeVar("S", bound=Enum)
Handler = Callable[[RatingCall, ChannelLike, IvrContext], Awaitable[S]]


async def run_steps(
    steps: Mapping[S, Handler[S]],
    first: S,
    done: S,
    call: RatingCall,
    ch: ChannelLike,
    ctx: IvrContext,
) -> None:
    """Walk the steps until `done`; a hang-up at any step still saves the level given."""
    step = first
    try:
        while step is not done:
            step = await steps[step](call, ch, ctx)
    finally:
        start_write(call, ch.env, ctx)  # a hang-up after the level keeps it
        # Shielded: a hang-up or a server shutting down must not cancel these halfway.
        for work in (call.check, call.write):
            if work is None:
                continue
            if work.done():  # the usual case: no shield (a future and callbacks) needed
                work.result()
            else:
                await asyncio.shield(work)


def start_write(call: RatingCall, env: dict[str, str], ctx: IvrContext) -> None:
    """Start writing the rating, once, even if this write fails."""
    if call.saved or call.level is None:
        return
    call.saved = True
    call.write = ctx.track(_write(call, env, ctx))


async def _write(call: RatingCall, env: dict[str, str], ctx: IvrContext) -> None:
    assert call.level is not None
    # The check may still run (a slow database): its answer decides, not the caller's wait.
    statuses = await call.check if call.check is not None else []
    if statuses is not None and statuses and "pending" not in statuses:
        log.info("ivr rating not written: every case was rated already", level=call.level)
        return
    outcomes = await save_rating(
        ctx,
        env,
        call.cases,
        level=call.level,
        tags=call.tags,
        voice_ref=call.voice_ref,
        register=statuses is None,  # the check failed: register the cases with the write
    )
    call.stored = len(outcomes)
    call.lost = not outcomes  # save_rating logged why (refused, or LOST after retries)


class Written(Enum):
    """How the call's write stands when the flow asks (`written`)."""

    STORED = "stored"  # committed, or nothing to write (no level; every case rated already)
    LOST = "lost"  # ended without storing: the cases stay pending
    RUNNING = "running"  # still running after the wait


async def written(call: RatingCall, wait_s: float) -> Written:
    """Wait up to `wait_s` for the call's write (never cancelling it); how it stands."""
    work = call.write
    if work is None:
        return Written.STORED
    if not work.done():
        await asyncio.wait({work}, timeout=wait_s)
        if not work.done():
            return Written.RUNNING
    if work.cancelled() or work.exception() is not None or call.lost:
        return Written.LOST  # an exception is raised again by run_steps, which logs it
    return Written.STORED


def closing(prompt_id: str, done: S) -> Handler[S]:
    """A last prompt, then HANGUP (for the endings that write nothing, or whose write ended)."""

    async def play_and_hang_up(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> S:
        await ch.stream_file(ctx.prompt(prompt_id))
        await ch.hangup()
        return done

    return play_and_hang_up


def thanking(prompt_id: str, done: S, not_saved: S) -> Handler[S]:
    """The thank-you, played over the write; HANGUP only once the write has committed.

    A node killed after its HANGUP thus never loses a rating the caller was thanked for
    (tests/faults/test_ivr_commit.py). The thank-you (5 s on a phone) hides the write, so the
    caller does not wait in practice; a write that failed sends the caller to `not_saved`
    (an apology) instead of HANGUP; one still running after `ctx.commit_wait_s` of silence
    is left to run (the session still ends only after it) and HANGUP goes.
    """

    async def thank_and_hang_up(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> S:
        await ch.stream_file(ctx.prompt(prompt_id))
        outcome = await written(call, ctx.commit_wait_s)
        if outcome is Written.LOST:
            return not_saved
        if outcome is Written.RUNNING:
            log.warning(
                "HANGUP before the rating's write committed: the database is slower than the wait",
                waited_s=ctx.commit_wait_s,
                cases=",".join(call.cases.case_nos),
            )
        await ch.hangup()
        return done

    return thank_and_hang_up


def awaiting_write(thanks: S, not_saved: S) -> Handler[S]:
    """Wait for the write before any last prompt: for a call whose start-of-call check found
    the database unreachable, so that the caller is not thanked for a rating that is lost."""

    async def wait(call: RatingCall, ch: ChannelLike, ctx: IvrContext) -> S:
        outcome = await written(call, ctx.commit_wait_s)
        return not_saved if outcome is Written.LOST else thanks

    return wait
