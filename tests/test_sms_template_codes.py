"""Template codes: the profile's `[sms.template_codes.<provider>]`, PINGJIA_SMS_TEMPLATE_CODES
over it, the start-up check for template providers and `pingjia sms templates`.

Bad inputs tried: an override that is not JSON, a JSON array, a code that is a number, empty
or holds a space, an override naming a template the profile lacks; a profile mapping a
template it does not have, or a code with a space; a template provider missing codes (one,
several), a provider no module names with the flag set; each at start-up (build_services,
before the database is opened) and in the command; a provider the registry lacks (command).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pingjia.cli import main
from pingjia.composition import build_services
from rating.errors import DomainError
from rating.policy.loader import ProfileError, load_profile
from rating.policy.profile import Profile
from sms.providers.console import ConsoleSmsSettings
from sms.providers.console import build as build_console
from sms.providers.plugin import ProviderPlugin, as_written
from sms.providers.registry import PLUGINS
from sms.template_codes import (
    check_template_codes,
    parse_override,
    template_codes,
    templates_in_use,
)
from tests.conftest import make_settings

PROFILES = Path(__file__).resolve().parent.parent / "rating" / "policy" / "profiles"
CITIZEN_TEMPLATES = [
    "already_rated",
    "ask_reason",
    "confirmation",
    "help",
    "invitation",
    "opted_in",
    "opted_out",
    "reminder",
    "ticket_deadline",
]


def all_codes(prefix: str = "SMS_") -> dict[str, str]:
    return {name: f"{prefix}{n}" for n, name in enumerate(CITIZEN_TEMPLATES, start=100)}


def profile_with(tmp_path: Path, table: str, extra: str = "") -> Path:
    text = (PROFILES / "taishan.toml").read_text(encoding="utf-8") + extra
    path = tmp_path / "city.toml"
    path.write_text(text.replace("\n[ivr]\n", f"\n{table}\n\n[ivr]\n", 1), encoding="utf-8")
    return path


@pytest.fixture
def taishan() -> Profile:
    return load_profile("taishan")


def test_the_profile_maps_codes_per_provider(tmp_path: Path) -> None:
    table = '[sms.template_codes.aliyun]\ninvitation = "SMS_460775001"\nhelp = "SMS_460775003"'
    profile = load_profile(str(profile_with(tmp_path, table)))
    assert profile.sms.template_codes == {
        "aliyun": {"invitation": "SMS_460775001", "help": "SMS_460775003"}
    }
    assert template_codes(profile, "aliyun", {"help": "SMS_9"}) == {
        "invitation": "SMS_460775001",
        "help": "SMS_9",  # the override wins, template by template
    }
    assert template_codes(profile, "tencent", {}) == {}


@pytest.mark.parametrize(
    ("table", "where"),
    [
        ('[sms.template_codes.aliyun]\nnope = "SMS_1"', "sms.template_codes.aliyun.nope"),
        ('[sms.template_codes.aliyun]\ninvitation = "SMS 1"', "sms.template_codes.aliyun"),
        ("[sms.template_codes.aliyun]\ninvitation = 1987001", "sms.template_codes.aliyun"),
        ('[sms.template_codes.Aliyun]\ninvitation = "SMS_1"', "sms.template_codes"),
    ],
)
def test_bad_profile_mappings_name_their_key(tmp_path: Path, table: str, where: str) -> None:
    with pytest.raises(ProfileError, match=where.replace(".", r"\.")):
        load_profile(str(profile_with(tmp_path, table)))


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("{not json", "is not JSON"),
        ('["invitation"]', "must be a JSON object"),
        ('{"invitation": 1987001}', "the code of 'invitation' must be a string"),
        ('{"invitation": ""}', "the code of 'invitation'"),
        ('{"invitation": "SMS 1"}', "without spaces"),
    ],
)
async def test_bad_overrides(raw: str, words: str, tmp_path: Path, taishan: Profile) -> None:
    with pytest.raises(ValueError, match=words) as bad:
        parse_override(raw)
    assert "PINGJIA_SMS_TEMPLATE_CODES" in str(bad.value)
    with pytest.raises(DomainError, match="PINGJIA_SMS_TEMPLATE_CODES"):
        check_template_codes(taishan, PLUGINS["console"], raw)
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/t.db", tmp_path, sms_template_codes=raw
    )
    with pytest.raises(DomainError, match="PINGJIA_SMS_TEMPLATE_CODES"):
        await build_services(settings)  # start-up stops before the database is opened
    assert not (tmp_path / "t.db").exists()


def test_override_parsed() -> None:
    assert parse_override("") == {} and parse_override("  ") == {} and parse_override(None) == {}
    assert parse_override('{"invitation": "1987001"}') == {"invitation": "1987001"}


def test_a_template_provider_needs_a_code_for_each_template_in_use(taishan: Profile) -> None:
    assert templates_in_use(taishan) == CITIZEN_TEMPLATES  # no 追评 in Taishan
    assert "second_invitation" in templates_in_use(
        taishan.model_copy(update={"second_rating": True})
    )
    codes = all_codes()
    assert check_template_codes(taishan, PLUGINS["aliyun"], json.dumps(codes)) == codes
    partial = {k: v for k, v in codes.items() if k != "reminder"}
    with pytest.raises(DomainError) as one:
        check_template_codes(taishan, PLUGINS["aliyun"], json.dumps(partial))
    assert one.value.detail.startswith(
        "PINGJIA_SMS_PROVIDER=aliyun: no aliyun template code for the SMS template reminder;"
    )
    with pytest.raises(DomainError) as several:
        check_template_codes(taishan, PLUGINS["tencent"], '{"invitation": "1987001"}')
    assert "no tencent template code for the SMS templates already_rated, ask_reason" in str(
        several.value
    )
    # Text providers render our wording: no codes needed, but a bad override still stops.
    assert check_template_codes(taishan, PLUGINS["console"], "") == {}
    with pytest.raises(DomainError, match="does not have: invitatoin"):
        check_template_codes(taishan, PLUGINS["console"], '{"invitatoin": "SMS_1"}')


def test_being_a_template_provider_is_the_plugins_own_flag(taishan: Profile) -> None:
    assert {n for n, p in PLUGINS.items() if p.sends_templates} == {"aliyun", "tencent"}
    # A provider no module of pingjia names: its plug-in's flag alone asks for the codes.
    newcomer = ProviderPlugin(
        name="newcomer", settings=ConsoleSmsSettings, build=build_console, sends_templates=True
    )
    assert newcomer.template_wording is as_written
    with pytest.raises(DomainError) as missing:
        check_template_codes(taishan, newcomer, '{"invitation": "N1"}')
    assert missing.value.detail.startswith(
        "PINGJIA_SMS_PROVIDER=newcomer: no newcomer template code for the SMS templates "
        "already_rated, ask_reason"
    )
    codes = {name: f"N{n}" for n, name in enumerate(CITIZEN_TEMPLATES)}
    assert check_template_codes(taishan, newcomer, json.dumps(codes)) == codes
    as_text = ProviderPlugin(name="newcomer", settings=ConsoleSmsSettings, build=build_console)
    assert check_template_codes(taishan, as_text, "") == {}


def test_wordings_as_each_provider_registers_them(taishan: Profile) -> None:
    invitation = taishan.sms.templates["invitation"]
    assert PLUGINS["aliyun"].template_wording(invitation) == (
        "12345回访：诉求${case_no}已办结，请回复1-5评价（1非常满意，5非常不满意）或点${link}"
    )
    assert PLUGINS["tencent"].template_wording(invitation) == (
        "12345回访：诉求{1}已办结，请回复1-5评价（1非常满意，5非常不满意）或点{2}"
    )
    for name in ("console", "twilio", "smpp"):
        assert PLUGINS[name].template_wording(invitation) == invitation
    assert "回访" in invitation and "问卷" not in invitation and "好评" not in invitation


async def test_start_up_stops_on_an_override_naming_no_template(tmp_path: Path) -> None:
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/t.db", tmp_path, sms_template_codes='{"nope": "S1"}'
    )
    with pytest.raises(DomainError, match="PINGJIA_SMS_TEMPLATE_CODES names templates"):
        await build_services(settings)
    assert not (tmp_path / "t.db").exists()  # stopped before anything was opened


def test_the_templates_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PINGJIA_SMS_TEMPLATE_CODES", raising=False)
    monkeypatch.setenv("PINGJIA_PROFILE", "taishan")
    assert main(["sms", "templates"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 10
    assert lines[4] == (
        "invitation\t12345回访：诉求{case_no}已办结，请回复1-5评价（1非常满意，5非常不满意）或点{link}"
    )
    monkeypatch.setenv("PINGJIA_SMS_TEMPLATE_CODES", json.dumps(all_codes()))
    assert main(["sms", "templates", "--provider", "aliyun"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[4].split("\t")[:2] == ["invitation", "SMS_104"]
    assert lines[4].endswith("或点${link}")
    assert lines[8].split("\t")[:2] == ["second_invitation", "(not in use)"]
    monkeypatch.setenv("PINGJIA_SMS_TEMPLATE_CODES", '{"invitation": "1987001"}')
    assert main(["sms", "templates", "--provider", "tencent"]) == 1
    captured = capsys.readouterr()
    assert "reminder\t(no code)\t12345回访提醒：诉求{1}尚未评价，请回复1-5或点{2}" in captured.out
    assert "no tencent template code for the SMS templates" in captured.err
    monkeypatch.setenv("PINGJIA_SMS_TEMPLATE_CODES", "[1]")
    assert main(["sms", "templates"]) == 2  # bad settings: nothing listed
    assert "PINGJIA_SMS_TEMPLATE_CODES must be a JSON object" in capsys.readouterr().err
    monkeypatch.delenv("PINGJIA_SMS_TEMPLATE_CODES")
    assert main(["sms", "templates", "--provider", "nobody"]) == 2  # no such provider
    assert "PINGJIA_SMS_PROVIDER='nobody' is no SMS provider" in capsys.readouterr().err
