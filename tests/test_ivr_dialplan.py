"""The Originates pingjia sends against the sample dialplan and manager.conf, read from
deploy/asterisk/ (no Asterisk runs here), and the dial-string settings.

Bad inputs and faults tried here: an E.164 number with its `+` (which `_X.` alone does not
match), a mainland number, a dial template without its placeholder, with an unknown one, with a
format spec, with a comma or a blank, with unbalanced braces, without `TECH/`; a channel driver
that does not exist (OriginateResponse Reason 0, `Uniqueid: <unknown>`); the channel events of a
busy PBX against the sample eventfilters.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from ivr.ami import LOGIN_EVENTS, AmiClient, AmiUrl, outcome_of
from ivr.call_records import CALLBACK_EVENT
from ivr.dial import DialTemplate, DialTemplateError
from ivr.outbound import CALLBACK_CONTEXT, SURVEY_CONTEXT, CallDesk
from pingjia.composition import Services, call_desk, dial_templates
from pingjia.settings import Settings
from tests.fakes.ami import FakeAmi, OriginatePlan, passes_eventfilters
from tests.test_ivr_ami import CASE, register

ASTERISK = Path(__file__).resolve().parent.parent / "deploy" / "asterisk"


def conf(name: str) -> dict[str, list[tuple[str, str]]]:
    """section → [(key, value)]; `;` starts a comment, `=>` counts as `=`."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for raw in (ASTERISK / name).read_text(encoding="utf-8").splitlines():
        line = re.split(r"(?<!\\);", raw, maxsplit=1)[0].strip()
        if header := re.fullmatch(r"\[([^\]]+)\]", line):
            current = sections.setdefault(header[1], [])
        elif line:
            key, _, value = line.partition("=")
            current.append((key.strip(), value.lstrip(">").strip()))
    return sections


def patterns(context: str) -> list[str]:
    return [v.split(",", 1)[0] for k, v in conf("extensions.conf")[context] if k == "exten"]


def matches(pattern: str, exten: str) -> bool:
    """Asterisk's extension matching (pbx.c): `_` patterns with X Z N [..] . !, else literal."""
    if not pattern.startswith("_"):
        return pattern == exten
    regex = ""
    for token in re.findall(r"\[[^\]]+\]|.", pattern[1:]):
        letter = token.upper()
        if token.startswith("["):
            regex += token
        elif letter in "XZN":
            regex += {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]"}[letter]
        elif token == ".":
            regex += ".+"
        elif token == "!":
            regex += ".*"
        else:
            regex += re.escape(token)
    return re.fullmatch(regex, exten) is not None


def test_the_matcher_is_asterisks() -> None:
    """The matcher itself: `_X.` refuses a leading + (PLATFORM.md), `_+X.` takes it."""
    assert matches("_X.", "13812345678") and not matches("_X.", "+442071234567")
    assert matches("_+X.", "+442071234567") and not matches("_+X.", "13812345678")
    assert matches("_1XXX", "1001") and not matches("_1XXX", "10011")
    assert matches("s", "s") and not matches("s", "t")


@pytest.mark.parametrize(
    ("given", "phone"),
    [
        ("+442071234567", "+442071234567"),
        ("13812345678", "13812345678"),
        ("+8613812345678", "13812345678"),  # stored in the national form
    ],
)
async def test_every_exten_sent_matches_the_sample_contexts(
    services: Services, fake_ami: FakeAmi, given: str, phone: str
) -> None:
    """The Exten of a call-back (the number as stored) and of a survey (`s`) exist in the
    contexts the Originates name; the citizen leg's dial string travels as PINGJIA_DIAL."""
    ivr = services.profile.ivr.model_copy(update={"outbound_survey": True})
    profile = services.profile.model_copy(update={"ivr": ivr})
    ami = AmiClient(AmiUrl.parse(fake_ami.url))
    desk = CallDesk(services.sessions, profile, services.vault, services.clock, ami)
    await ami.start()
    try:
        await register(services, phone=given)
        await desk.request_callback(CASE, "1001", "agent:a")
        await desk.settle()
        await register(services, "C2026112000002", phone=given)
        await desk.request_survey("C2026112000002", "agent:a")
        await desk.settle()
    finally:
        await desk.close()
    callback, survey = fake_ami.originates()
    assert callback["Context"] == CALLBACK_CONTEXT and callback["Exten"] == phone
    assert any(matches(p, phone) for p in patterns(CALLBACK_CONTEXT)), patterns(CALLBACK_CONTEXT)
    assert f"PINGJIA_DIAL=PJSIP/{phone}@trunk" in callback["Variable"]
    assert survey["Context"] == SURVEY_CONTEXT
    assert any(matches(p, str(survey["Exten"])) for p in patterns(SURVEY_CONTEXT))


def test_the_callback_dialplan_reports_what_pingjia_reads() -> None:
    """The hang-up handler's UserEvent carries the names the listener reads, with the
    variables pingjia sets on the Originate."""
    text = (ASTERISK / "extensions.conf").read_text(encoding="utf-8")
    assert "hangup_handler_push)=pingjia-callback-report,s,1" in text
    [report] = [v for k, v in conf("extensions.conf")["pingjia-callback-report"] if k == "exten"]
    assert f"UserEvent({CALLBACK_EVENT}," in report
    assert "PingjiaCall: ${PINGJIA_CALL}" in report and "DialStatus: ${DIALSTATUS}" in report
    dial = [v for k, v in conf("extensions.conf")["pingjia-callback-dial"] if "Dial(" in v]
    assert dial == ["n,Dial(${CITIZEN},60)"]
    assert "Set(CITIZEN=${PINGJIA_DIAL})" in text


def test_manager_conf_lets_through_only_what_pingjia_listens_to() -> None:
    """The sample eventfilters pass OriginateResponse and the call-back's UserEvent, and drop
    the channel events a PBX sends to every `call` reader; the user may read both classes."""
    user = dict(conf("manager.conf")["pingjia"])
    filters = [v for k, v in conf("manager.conf")["pingjia"] if k == "eventfilter"]
    assert filters
    assert set(LOGIN_EVENTS.split(",")) <= set(user["read"].split(","))
    assert user["write"] == "originate"

    def event(**headers: str) -> str:
        return "".join(f"{k}: {v}\r\n" for k, v in headers.items())

    ours = [
        event(Event="OriginateResponse", Privilege="call,all", ActionID="x", Response="Success"),
        event(Event="UserEvent", Privilege="user,all", UserEvent=CALLBACK_EVENT, DialStatus="BUSY"),
    ]
    noise = [
        event(Event=name, Privilege="call,all", Channel="PJSIP/trunk-1")
        for name in ("Newchannel", "Newstate", "VarSet", "DialBegin", "DialEnd", "Hangup")
    ] + [event(Event="UserEvent", Privilege="user,all", UserEvent="SomethingElse")]
    assert all(passes_eventfilters(filters, e) for e in ours)
    assert not any(passes_eventfilters(filters, e) for e in noise)


async def test_a_callback_through_the_sample_eventfilters_still_learns_the_dial_result(
    services: Services, fake_ami: FakeAmi
) -> None:
    """End to end with the sample filters on the fake: noise is not sent, ours is."""
    fake_ami.eventfilters = [v for k, v in conf("manager.conf")["pingjia"] if k == "eventfilter"]
    ami = AmiClient(AmiUrl.parse(fake_ami.url))
    desk = CallDesk(services.sessions, services.profile, services.vault, services.clock, ami)
    await ami.start()
    try:
        await register(services)
        fake_ami.script_originate(OriginatePlan(dial_status="NOANSWER"))
        await desk.request_callback(CASE, "1001", "agent:a")
        fake_ami.noise()
        await desk.settle()
        [call] = await desk.calls_of(CASE)
    finally:
        await desk.close()
    assert (call.status, call.dial_status, call.citizen_reached) == ("answered", "NOANSWER", False)
    assert [e["Event"] for e in fake_ami.events_sent] == ["OriginateResponse", "UserEvent"]


@pytest.mark.parametrize(
    ("field", "value", "fault"),
    [
        ("outbound_dial", "PJSIP/trunk", "has no {number} placeholder"),
        ("outbound_dial", "PJSIP/{phone}@trunk", "unknown placeholder(s) {phone}"),
        ("outbound_dial", "PJSIP/{number}@{trunk}", "unknown placeholder(s) {trunk}"),
        ("outbound_dial", "PJSIP/{number:>12}@trunk", "without a format"),
        ("outbound_dial", "PJSIP/{number}@trunk,30", "without blanks or commas"),
        ("outbound_dial", "PJSIP/{number @trunk", "not a valid template"),
        ("outbound_dial", "{number}", "TECH/resource"),
        ("agent_dial", "PJSIP/agent{number}", "only {extension} is known"),
        ("agent_dial", "PJSIP/agent", "PINGJIA_AGENT_DIAL"),
    ],
)
def test_a_wrong_dial_template_stops_start_up(
    tmp_path: Path, field: str, value: str, fault: str
) -> None:
    """Each fault stops the composition (before anything is opened), naming the variable and
    what is wrong; the settings themselves keep plain strings (they know no IVR type)."""
    settings = Settings(_env_file=None, data_dir=tmp_path, **{field: value})  # type: ignore[call-arg, arg-type]
    with pytest.raises(DialTemplateError) as error:
        dial_templates(settings)
    assert fault in str(error.value)
    assert ("PINGJIA_" + field.upper()) in str(error.value)


def test_dial_template_fills_its_placeholder() -> None:
    template = DialTemplate.parse("SIP/{number}@carrier", "number", "PINGJIA_OUTBOUND_DIAL")
    assert template.fill("+442071234567") == "SIP/+442071234567@carrier"
    assert str(template) == "PINGJIA_OUTBOUND_DIAL=SIP/{number}@carrier"
    with pytest.raises(DialTemplateError):
        DialTemplate.parse("SIP/{number}\r\nAction: Logoff", "number", "PINGJIA_OUTBOUND_DIAL")


async def test_dial_strings_come_from_settings_and_a_wrong_one_is_named_in_the_failure(
    services: Services, fake_ami: FakeAmi, tmp_path: Path
) -> None:
    """A channel driver Asterisk does not have: Originate queued, then Reason 0 with
    `Uniqueid: <unknown>`; the call's reason names the setting and its template, not the
    citizen's number."""
    settings = services.settings.model_copy(
        update={
            "ami_url": fake_ami.url,
            "outbound_dial": "SIP/{number}@carrier",
            "agent_dial": "Local/{extension}@agents",
        }
    )
    desk = call_desk(settings, services.sessions, services.profile, services.vault, services.clock)
    assert desk.ami is not None
    await desk.ami.start()
    try:
        await register(services)
        fake_ami.script_originate(OriginatePlan(answered=False, reason="0"))
        call = await desk.request_callback(CASE, "1001", "agent:a")
        await desk.settle()
        [after] = await desk.calls_of(CASE)
    finally:
        await desk.close()
    [sent] = fake_ami.originates()
    assert sent["Channel"] == "Local/1001@agents"
    assert "PINGJIA_DIAL=SIP/13812345678@carrier" in sent["Variable"]
    assert call.status == "originated"
    assert after.status == "failed"
    assert after.reason == (
        "no such number or channel (failed): "
        "check the dial string PINGJIA_AGENT_DIAL=Local/{extension}@agents"
    )


def test_unknown_uniqueid_is_no_id() -> None:
    """Asterisk 20 writes `Uniqueid: <unknown>` on a failed Originate."""
    event: dict[str, Any] = {"Response": "Failure", "Reason": "5", "Uniqueid": "<unknown>"}
    outcome = outcome_of(event)
    assert (outcome.answered, outcome.reason, outcome.uniqueid) == (False, "busy", None)
    answered = outcome_of({"Response": "Success", "Reason": "4", "Uniqueid": "1700000001.7"})
    assert answered.uniqueid == "1700000001.7" and answered.answered
