"""Each flow's step table walked one transition at a time, with a scripted channel and a
scripted rating service: no socket, no database (the end-to-end flows are tests/test_ivr_flow.py).

Every edge of `rating.STEPS` and `survey.STEPS` is a row below; a test checks that the rows
reach every step of both tables. Bad inputs tried: a key that is no level, a key that is in no
reason menu, silence at each menu until the tries run out, a prompt missing on the Asterisk
host, a survey for no case, for two cases, for an unknown case and for a rated one, a caller
who hangs up while recording.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from ivr.agi.channel import Hangup
from ivr.agi.protocol import ScriptRequest
from ivr.agi.results import PROMPT_MISSING, Digits, Recording
from ivr.flows import rating, survey
from ivr.flows.base import IvrContext, RatingCall
from ivr.flows.cases import CallCases
from rating.cases.registration import ServiceRecord
from rating.cases.status import CaseStatus
from rating.errors import NotFound
from rating.policy.loader import load_profile
from rating.policy.profile import Profile
from rating.ratings.requests import RatingRequest

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
TAISHAN = load_profile("taishan")
NO_KEY = None


class ScriptedChannel:
    """Answers each command from a script, in order; records what the flow asked."""

    def __init__(self, answers: list[Any]) -> None:
        self.answers = list(answers)
        self.commands: list[str] = []
        self.env = {"agi_uniqueid": "1700000000.7", "agi_callerid": "13812345678"}
        self.uniqueid = "1700000000.7"
        self.peer = "10.0.0.5"
        self.hung_up = False

    def _next(self) -> Any:
        assert self.answers, f"the flow asked more than scripted: {self.commands}"
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):  # the caller hangs up during this command
            raise answer
        return answer

    async def stream_file(self, name: str, escape: str = "") -> str | None:
        self.commands.append(f"play {name.rsplit('/', 1)[-1]}")
        answer: str | None = self._next()
        return answer

    async def get_data(self, name: str, timeout_ms: int, max_digits: int) -> Digits:
        raise AssertionError("no flow uses GET DATA")

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        self.commands.append("wait")
        answer: str | None = self._next()
        return answer

    async def record_file(
        self, path: str, fmt: str, escape: str, max_ms: int, *, beep: bool, silence_s: int
    ) -> Recording:
        self.commands.append(f"record {path}")
        answer: Recording = self._next()
        return answer

    async def set_variable(self, name: str, value: str) -> None:
        self.commands.append(f"set {name}")

    async def hangup(self) -> None:
        self.commands.append("hangup")
        self.hung_up = True


class ScriptedRatings:
    """The domain as the flows ask it, answering from a table of cases; records the ratings."""

    def __init__(self, statuses: dict[str, str]) -> None:
        self.statuses = statuses
        self.rated: list[RatingRequest] = []

    async def case_status(self, record: ServiceRecord, *, actor: str, now: datetime) -> CaseStatus:
        known = record.case_no in self.statuses
        return CaseStatus(self.statuses.setdefault(record.case_no, "pending"), not known)

    async def evaluation(self, case_no: str) -> Any:
        if case_no not in self.statuses:
            raise NotFound(f"case {case_no} not found")
        return SimpleNamespace(status=self.statuses[case_no])

    async def rate(self, request: RatingRequest, *, actor: str, now: datetime) -> Any:
        self.rated.append(request)
        self.statuses[request.case_no] = "rated"
        case = SimpleNamespace(case_no=request.case_no)
        return SimpleNamespace(
            evaluation=SimpleNamespace(case=case), adopted=True, replayed=False, ticket=None
        )


def context(profile: Profile = TAISHAN, statuses: dict[str, str] | None = None) -> IvrContext:
    return IvrContext(
        ratings=ScriptedRatings(statuses if statuses is not None else {"C1": "pending"}),
        clock=lambda: NOW,
        profile=profile,
    )


def confirming(profile: Profile) -> Profile:
    return profile.model_copy(update={"ivr": profile.ivr.model_copy(update={"confirm": True})})


def level_without_menu(profile: Profile) -> int:
    return next(level for level in range(1, 6) if not context(profile).menu(level))


def checked(statuses: list[str] | None, **values: Any) -> Callable[[RatingCall], None]:
    """A case check that has already answered (and the call's other values)."""

    def arrange(call: RatingCall) -> None:
        given(**values)(call)
        future: asyncio.Future[list[str] | None] = asyncio.get_running_loop().create_future()
        future.set_result(statuses)
        call.check = future  # type: ignore[assignment]

    return arrange


def given(**values: Any) -> Callable[[RatingCall], None]:
    def arrange(call: RatingCall) -> None:
        for name, value in values.items():
            setattr(call, name, value)

    return arrange


def nothing(call: RatingCall) -> None:
    pass


def writing(*, stored: bool) -> Callable[[RatingCall], None]:
    """A level given and its write already ended: committed, or lost (the database failed)."""

    def arrange(call: RatingCall) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        call.level, call.saved, call.write, call.lost = 3, True, future, not stored  # type: ignore[assignment]

    return arrange


MENU_4 = sorted(context().menu(4))  # the digits of level 4's reason menu
VOICE = Recording("dtmf", "#", 40_000)
SHORT = Recording("timeout", None, 12_000)  # one second of voice plus the kept silence

R = rating.Step
S = survey.Step
# (name, flow, step, profile, arrange the call, the channel's answers, the next step)
ROWS: list[tuple[str, Any, Any, Profile, Callable[[RatingCall], None], list[Any], Any]] = [
    ("greeting key", rating, R.GREETING, TAISHAN, nothing, ["4"], R.LEVEL),
    ("greeting missing", rating, R.GREETING, TAISHAN, nothing, [PROMPT_MISSING], R.MENU),
    ("greeting silent", rating, R.GREETING, TAISHAN, nothing, [NO_KEY], R.WAIT_LEVEL),
    ("menu key", rating, R.MENU, TAISHAN, nothing, ["2"], R.LEVEL),
    ("menu silent", rating, R.MENU, TAISHAN, nothing, [NO_KEY], R.WAIT_LEVEL),
    ("invalid key", rating, R.INVALID, TAISHAN, nothing, ["3"], R.LEVEL),
    ("invalid silent", rating, R.INVALID, TAISHAN, nothing, [NO_KEY], R.MENU),
    ("wait level key", rating, R.WAIT_LEVEL, TAISHAN, nothing, ["5"], R.LEVEL),
    ("wait level bad key", rating, R.WAIT_LEVEL, TAISHAN, nothing, ["9"], R.INVALID),
    ("wait level silent", rating, R.WAIT_LEVEL, TAISHAN, nothing, [NO_KEY], R.MENU),
    ("wait level last try", rating, R.WAIT_LEVEL, TAISHAN, given(tries=2), [NO_KEY], R.GOODBYE),
    ("level rated", rating, R.LEVEL, TAISHAN, checked(["rated"], level=4), [], R.ALREADY),
    ("level menu", rating, R.LEVEL, TAISHAN, given(level=4), [], R.REASON),
    (
        "level no menu",
        rating,
        R.LEVEL,
        TAISHAN,
        given(level=level_without_menu(TAISHAN)),
        [],
        R.SAVE,
    ),
    (
        "level no menu confirm",
        rating,
        R.LEVEL,
        confirming(TAISHAN),
        given(level=level_without_menu(TAISHAN)),
        [],
        R.CONFIRM,
    ),
    ("reason key", rating, R.REASON, TAISHAN, given(level=4), [MENU_4[0]], R.VOICE),
    ("reason silent", rating, R.REASON, TAISHAN, given(level=4), [NO_KEY], R.WAIT_REASON),
    ("reason invalid", rating, R.REASON_INVALID, TAISHAN, given(level=4), [NO_KEY], R.REASON),
    ("wait reason key", rating, R.WAIT_REASON, TAISHAN, given(level=4), [MENU_4[-1]], R.VOICE),
    (
        "wait reason bad key",
        rating,
        R.WAIT_REASON,
        TAISHAN,
        given(level=4),
        ["0"],
        R.REASON_INVALID,
    ),
    ("wait reason silent", rating, R.WAIT_REASON, TAISHAN, given(level=4), [NO_KEY], R.REASON),
    (
        "wait reason last try",
        rating,
        R.WAIT_REASON,
        TAISHAN,
        given(level=4, tries=1),
        [NO_KEY],
        R.VOICE,
    ),
    ("voice skipped", rating, R.VOICE, TAISHAN, nothing, ["#"], R.SAVE),
    ("voice skipped confirm", rating, R.VOICE, confirming(TAISHAN), nothing, ["#"], R.CONFIRM),
    ("voice offer missing", rating, R.VOICE, TAISHAN, nothing, [PROMPT_MISSING], R.SAVE),
    ("voice offered", rating, R.VOICE, TAISHAN, nothing, [NO_KEY], R.RECORD),
    ("record", rating, R.RECORD, TAISHAN, nothing, [VOICE], R.SAVE),
    ("record confirm", rating, R.RECORD, confirming(TAISHAN), nothing, [SHORT], R.CONFIRM),
    ("confirm keep", rating, R.CONFIRM, TAISHAN, given(level=4), ["1"], R.SAVE),
    ("confirm silent", rating, R.CONFIRM, TAISHAN, given(level=4), [NO_KEY] * 4, R.SAVE),
    ("confirm again", rating, R.CONFIRM, TAISHAN, given(level=4), [NO_KEY, "2"], R.MENU),
    ("save", rating, R.SAVE, TAISHAN, given(level=2), [], R.THANKS),
    ("save found rated", rating, R.SAVE, TAISHAN, checked(["rated"], level=4), [], R.ALREADY),
    ("save check failed", rating, R.SAVE, TAISHAN, checked(None, level=2), [], R.WAIT_WRITE),
    ("wait write stored", rating, R.WAIT_WRITE, TAISHAN, writing(stored=True), [], R.THANKS),
    ("wait write lost", rating, R.WAIT_WRITE, TAISHAN, writing(stored=False), [], R.NOT_SAVED),
    ("thanks", rating, R.THANKS, TAISHAN, writing(stored=True), [NO_KEY], R.DONE),
    ("thanks lost", rating, R.THANKS, TAISHAN, writing(stored=False), [NO_KEY], R.NOT_SAVED),
    ("not saved", rating, R.NOT_SAVED, TAISHAN, nothing, [NO_KEY], R.DONE),
    ("goodbye", rating, R.GOODBYE, TAISHAN, nothing, [NO_KEY], R.DONE),
    ("already", rating, R.ALREADY, TAISHAN, nothing, [NO_KEY], R.DONE),
    ("survey start", survey, S.START, TAISHAN, nothing, [], S.GREETING),
    (
        "survey start no case",  # and the other refusals: test_survey_start_refuses
        survey,
        S.START,
        TAISHAN,
        given(cases=CallCases((), "complaint", None)),
        [],
        S.NOT_FOUND,
    ),
    ("survey greeting key", survey, S.GREETING, TAISHAN, nothing, ["1"], S.SAVE),
    ("survey greeting missing", survey, S.GREETING, TAISHAN, nothing, [PROMPT_MISSING], S.MENU),
    ("survey greeting silent", survey, S.GREETING, TAISHAN, nothing, [NO_KEY], S.WAIT_LEVEL),
    ("survey menu key", survey, S.MENU, TAISHAN, nothing, ["5"], S.SAVE),
    ("survey menu silent", survey, S.MENU, TAISHAN, nothing, [NO_KEY], S.WAIT_LEVEL),
    ("survey wait key", survey, S.WAIT_LEVEL, TAISHAN, nothing, ["3"], S.SAVE),
    ("survey wait bad key", survey, S.WAIT_LEVEL, TAISHAN, nothing, ["7", NO_KEY], S.MENU),
    ("survey wait silent", survey, S.WAIT_LEVEL, TAISHAN, nothing, [NO_KEY], S.MENU),
    ("survey last try", survey, S.WAIT_LEVEL, TAISHAN, given(tries=2), [NO_KEY], S.GOODBYE),
    ("survey save", survey, S.SAVE, TAISHAN, given(level=3), [], S.THANKS),
    ("survey thanks", survey, S.THANKS, TAISHAN, writing(stored=True), [NO_KEY], S.DONE),
    (
        "survey thanks lost",
        survey,
        S.THANKS,
        TAISHAN,
        writing(stored=False),
        [NO_KEY],
        S.NOT_SAVED,
    ),
    ("survey not saved", survey, S.NOT_SAVED, TAISHAN, nothing, [NO_KEY], S.DONE),
    ("survey goodbye", survey, S.GOODBYE, TAISHAN, nothing, [NO_KEY], S.DONE),
    ("survey not found", survey, S.NOT_FOUND, TAISHAN, nothing, [NO_KEY], S.DONE),
]


def new_call(case_nos: tuple[str, ...] = ("C1",)) -> RatingCall:
    return RatingCall(cases=CallCases(case_nos, "complaint", None), uniqueid="1700000000.7")


@pytest.mark.parametrize(
    ("flow", "step", "profile", "arrange", "answers", "expected"),
    [row[1:] for row in ROWS],
    ids=[row[0] for row in ROWS],
)
async def test_each_transition(
    flow: Any,
    step: Any,
    profile: Profile,
    arrange: Callable[[RatingCall], None],
    answers: list[Any],
    expected: Any,
) -> None:
    call, ch, ctx = new_call(), ScriptedChannel(answers), context(profile)
    arrange(call)
    assert await flow.STEPS[step](call, ch, ctx) is expected, ch.commands
    assert ch.answers == [], f"scripted answers left unused: {ch.answers}"
    if expected in (R.DONE, S.DONE):
        assert ch.hung_up  # every last prompt ends with HANGUP
    if call.write is not None:
        await call.write


def test_the_rows_reach_every_step_of_both_tables() -> None:
    for flow, first in ((rating, R.GREETING), (survey, S.START)):
        walked = {row[2] for row in ROWS if row[1] is flow}
        reached = {row[6] for row in ROWS if row[1] is flow}
        assert walked == set(flow.STEPS), set(flow.STEPS) - walked
        assert reached | {first} == set(flow.Step), set(flow.Step) - reached


async def test_level_and_reason_keys_land_on_the_call() -> None:
    call, ctx = new_call(), context()
    await rating.STEPS[R.GREETING](call, ScriptedChannel(["4"]), ctx)
    await rating.STEPS[R.REASON](call, ScriptedChannel([MENU_4[0]]), ctx)
    assert call.level == 4 and call.tags == [ctx.menu(4)[MENU_4[0]].code]
    ch = ScriptedChannel([VOICE])
    await rating.STEPS[R.RECORD](call, ch, ctx)
    assert call.voice_ref is not None and call.voice_ref.endswith("1700000000.7.wav")
    assert ch.commands[0].startswith(f"record {ctx.recordings_dir}/")


async def test_a_message_under_one_second_is_no_voice_and_a_hang_up_while_recording_ends() -> None:
    call, ctx = new_call(), context()
    await rating.STEPS[R.RECORD](call, ScriptedChannel([SHORT]), ctx)
    assert call.voice_ref is None  # 12,000 samples less the 8,000 of kept silence
    with pytest.raises(Hangup):
        await rating.STEPS[R.RECORD](call, ScriptedChannel([Recording("hangup", None, 0)]), ctx)


async def test_confirm_again_forgets_what_was_given() -> None:
    call, ctx = new_call(), context()
    given(level=4, tags=["x"], voice_ref="v", tries=1)(call)
    await rating.STEPS[R.CONFIRM](call, ScriptedChannel(["2"]), ctx)
    assert (call.level, call.tags, call.voice_ref, call.tries) == (None, [], None, 0)


@pytest.mark.parametrize(
    ("case_nos", "statuses"),
    [((), {}), (("C1", "C2"), {"C1": "pending"}), (("C9",), {}), (("C1",), {"C1": "rated"})],
    ids=["no case", "two cases", "unknown case", "rated case"],
)
async def test_survey_start_refuses(case_nos: tuple[str, ...], statuses: dict[str, str]) -> None:
    step = await survey.STEPS[S.START](
        new_call(case_nos), ScriptedChannel([]), context(statuses=statuses)
    )
    assert step is S.NOT_FOUND


async def test_a_whole_rating_call_without_a_database() -> None:
    """run(): the case check while the greeting plays, level 4, a reason, a message, the
    write once, the thank-you, HANGUP; the rating reaches the domain with what was given."""
    ctx = context(statuses={})
    ch = ScriptedChannel([NO_KEY, "4", MENU_4[0], NO_KEY, VOICE, NO_KEY])
    await rating.run(ch, ScriptRequest("rating", {"case": ["C7"]}, ()), ctx)
    ratings = ctx.ratings
    assert isinstance(ratings, ScriptedRatings)
    [request] = ratings.rated
    assert (request.case_no, request.level, request.channel) == ("C7", 4, "ivr")
    assert request.tags == [ctx.menu(4)[MENU_4[0]].code] and request.voice_ref
    assert ch.commands[-2:] == ["play rating_thanks", "hangup"] and ctx.writes == set()


async def test_a_hang_up_after_the_level_still_writes_it() -> None:
    ctx = context()
    ch = ScriptedChannel(["2", Hangup("caller hung up")])
    with pytest.raises(Hangup):
        await rating.run(ch, ScriptRequest("rating", {"case": ["C1"]}, ()), ctx)
    ratings = ctx.ratings
    assert isinstance(ratings, ScriptedRatings)
    assert [(r.case_no, r.level) for r in ratings.rated] == [("C1", 2)]


def test_each_context_has_its_own_menus() -> None:
    sanmenxia = load_profile("sanmenxia")
    assert context().menu(4) != context(sanmenxia).menu(4)
    replaced = dataclasses.replace(context(), profile=sanmenxia)
    assert replaced.menu(4) == context(sanmenxia).menu(4)


def pending_write(call: RatingCall) -> asyncio.Event:
    """A level given and its write still running until the returned event is set."""
    release = asyncio.Event()

    async def write() -> None:
        await release.wait()

    call.level, call.saved, call.write = 3, True, asyncio.create_task(write())
    return release


@pytest.mark.parametrize(("flow", "thanks"), [(rating, R.THANKS), (survey, S.THANKS)])
async def test_hangup_waits_for_the_write_after_the_thank_you(flow: Any, thanks: Any) -> None:
    call, ch, ctx = new_call(), ScriptedChannel([NO_KEY]), context()
    release = pending_write(call)
    step = asyncio.create_task(flow.STEPS[thanks](call, ch, ctx))
    await asyncio.sleep(0.05)
    assert ch.commands == [f"play {flow.__name__.rsplit('.', 1)[-1]}_thanks"]  # no HANGUP yet
    assert not step.done()
    release.set()
    assert await step is flow.Step.DONE and ch.commands[-1] == "hangup"


async def test_a_write_slower_than_the_wait_lets_hangup_go_and_runs_on() -> None:
    call, ch = new_call(), ScriptedChannel([NO_KEY])
    ctx = dataclasses.replace(context(), commit_wait_s=0.05)
    release = pending_write(call)
    assert await rating.STEPS[R.THANKS](call, ch, ctx) is R.DONE
    assert ch.commands == ["play rating_thanks", "hangup"]
    assert call.write is not None and not call.write.done()  # never cancelled by the wait
    release.set()
    await call.write
