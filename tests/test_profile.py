"""Policy profiles: the shipped cities match the seeds, and every bad file is named precisely."""

from __future__ import annotations

import re
from datetime import datetime, time
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import pydantic
import pytest

from rating.errors import ProfileError
from rating.policy.levels import CHANNELS, LABELS
from rating.policy.loader import load_profile
from rating.policy.profile import TEMPLATE_NAMES, Profile, QuietHours

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _text(name: str) -> str:
    return (resources.files("rating.policy") / "profiles" / f"{name}.toml").read_text("utf-8")


@pytest.fixture(scope="module")
def taishan() -> Profile:
    return load_profile("taishan")


@pytest.fixture(scope="module")
def sanmenxia() -> Profile:
    return load_profile("sanmenxia")


# --- the shipped profiles against seeds/README.md ------------------------------------------


@pytest.mark.article("taishan", 10)
@pytest.mark.article("sanmenxia", 12)
def test_both_profiles_share_levels_and_scores(taishan: Profile, sanmenxia: Profile) -> None:
    for profile in (taishan, sanmenxia):
        assert sorted(profile.levels) == [1, 2, 3, 4, 5]
        assert [profile.label(n) for n in range(1, 6)] == list(LABELS.values())
        assert [profile.score(n) for n in range(1, 6)] == [10, 8, 6, 3, 0]
        assert profile.timezone == "Asia/Shanghai" and profile.tz == SHANGHAI
        assert profile.prompt_language == "cmn"
        assert profile.ticket_levels == frozenset({4, 5})
        assert [profile.opens_ticket(n) for n in range(1, 6)] == [False] * 3 + [True] * 2
        assert profile.reminder.enabled and profile.reminder.delay_hours == 24
        assert profile.default_rating.after_days == 7
        assert profile.quiet_hours.start == time(21) and profile.quiet_hours.end == time(8)
        assert profile.second_rating is False


def test_cities_differ_where_the_seeds_differ(taishan: Profile, sanmenxia: Profile) -> None:
    assert (taishan.name, taishan.city) == ("taishan", "台山")
    assert (sanmenxia.name, sanmenxia.city) == ("sanmenxia", "三门峡")
    assert taishan.label(taishan.default_rating.level) == "非常满意"
    assert sanmenxia.label(sanmenxia.default_rating.level) == "基本满意"
    assert taishan.reason_required_levels == frozenset({4, 5})
    assert taishan.reason_required(4) and not taishan.reason_required(3)
    assert sanmenxia.reason_required_levels == frozenset()
    assert not sanmenxia.reason_required(5)
    assert [(r.name, r.title, r.amount, r.unit) for r in taishan.ticket_deadlines] == [
        ("callback", "回访核实", 10, "workdays")
    ]
    assert [(r.name, r.amount, r.unit) for r in sanmenxia.ticket_deadlines] == [
        ("verify", 24, "hours"),
        ("rectify", 15, "days"),
    ]
    assert taishan.appeal.allowed and taishan.appeal.kinds == frozenset({"staff"})
    assert sanmenxia.appeal.kinds == frozenset({"staff", "matter"})
    assert taishan.central_store.region_code == "440781"
    assert sanmenxia.central_store.region_code == "411200"
    assert taishan.sms.signature == "台山12345" and sanmenxia.sms.signature == "三门峡12345"


def test_taishan_tags_come_from_the_indicator_tables(taishan: Profile) -> None:
    texts4 = [t.text for t in taishan.tags_for(4)]
    texts5 = [t.text for t in taishan.tags_for(5)]
    assert "服务不主动不热情，询问不能及时回答" in texts4
    assert "业务不熟，办事效率较低" in texts4
    assert "态度恶劣，故意刁难" in texts5
    assert "业务非常不熟悉，办事效率低" in texts5
    assert "超过法定时限办结且未给出正当理由" in texts5
    for level in (4, 5):
        tags = taishan.tags_for(level)
        assert {t.kind for t in tags} == {"staff", "matter"}
        assert len(tags) <= 9
        on_the_phone = [t for t in tags if t.digit is not None]
        assert len(on_the_phone) == 5  # the rest on the rating page and by SMS only
        assert all(len(t.spoken_label) <= 8 for t in on_the_phone)
        assert tags[-1].text == "其他" and tags[-1].digit == 9
    assert taishan.tags_for(1)  # the web page offers praise too (Art. 11: optional)


def test_tag_codes_are_unique_and_found(taishan: Profile, sanmenxia: Profile) -> None:
    for profile in (taishan, sanmenxia):
        codes = [t.code for tags in profile.tags.values() for t in tags]
        assert len(codes) == len(set(codes))
        assert all(re.fullmatch(r"[a-z][a-z0-9_]*", c) for c in codes)
        for code in codes:
            tag = profile.tag(code)
            assert tag is not None and tag.code == code
        assert profile.tag("no_such_tag") is None
    hostile = taishan.tag("staff_hostile")
    assert hostile is not None and hostile.kind == "staff" and hostile.digit == 1
    assert [t.text for t in sanmenxia.tags_for(4)] == [
        "态度不好",
        "业务不熟练",
        "办事效率低",
        "问题未解决",
        "其他",
    ]
    assert sanmenxia.tags_for(1) == []


def test_unknown_level_is_a_value_error(taishan: Profile) -> None:
    with pytest.raises(ValueError, match="unknown level 6"):
        taishan.score(6)
    with pytest.raises(ValueError):
        taishan.label(0)


def test_sms_templates_are_short_follow_up_notices(taishan: Profile, sanmenxia: Profile) -> None:
    values = {
        "case_no": "TS20261120000123",
        "link": "https://12345.example.cn/r/x7Kq2mPa",
        "ticket_no": "2611200001",
        "deadline": "回访核实",
        "due": "12月04日23:59",
        "state": "已超期12天",
    }
    for profile in (taishan, sanmenxia):
        sms = profile.sms
        assert set(TEMPLATE_NAMES) <= set(sms.templates)
        assert {"TD", "T", "N", "R", "退订", "STOP"} <= set(sms.opt_out_words)
        assert {"订阅", "START"} <= set(sms.opt_in_words)
        assert sms.daily_cap > 0
        framing = len(sms.signature) + 2  # 【signature】
        for name, template in sms.templates.items():
            assert "问卷" not in template and "好评" not in template, name
            fixed = re.sub(r"\{\w+\}", "", template)
            assert len(fixed) + framing <= 70, name
            rendered = template.format(**values, label="非常不满意")
            if "{link}" not in template:  # a link alone eats half a segment
                assert len(rendered) + framing <= 70, name
        assert "回访" in sms.templates["invitation"]


def test_ivr_and_store_settings(taishan: Profile, sanmenxia: Profile) -> None:
    for profile in (taishan, sanmenxia):
        ivr = profile.ivr
        assert (ivr.key_timeout_ms, ivr.max_tries, ivr.confirm) == (6000, 3, False)
        assert (ivr.record_max_seconds, ivr.record_silence_seconds) == (60, 3)
        store = profile.central_store
        assert store.level_codes == {1: "1", 2: "2", 3: "3", 4: "4", 5: "5"}
        assert set(store.channel_codes) == set(CHANNELS)
        assert store.send_phone_in_clear is False
        # No 2027 dates are invented: the operator adds them when published.
        assert profile.workday_overrides.holidays == []
        assert profile.workday_overrides.workdays == []


def test_a_path_loads_too_and_profiles_are_frozen(tmp_path: Path, taishan: Profile) -> None:
    path = tmp_path / "city.toml"
    path.write_text(_text("taishan"), "utf-8")
    assert load_profile(str(path)) == taishan
    with pytest.raises(pydantic.ValidationError):
        taishan.name = "x"  # type: ignore[misc]


# --- quiet hours ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clock", "quiet"),
    [
        (time(20, 59), False),
        (time(21), True),
        (time(23, 59), True),
        (time(0), True),
        (time(7, 59, 59), True),
        (time(8), False),
        (time(12), False),
    ],
)
def test_quiet_hours_wrap_past_midnight(taishan: Profile, clock: time, quiet: bool) -> None:
    assert taishan.quiet_hours.is_quiet(clock) is quiet


def test_quiet_hours_within_one_day_and_empty() -> None:
    lunch = QuietHours(start=time(12), end=time(14))
    assert lunch.is_quiet(time(13)) and not lunch.is_quiet(time(14))
    assert not lunch.is_quiet(time(11, 59))
    assert not QuietHours(start=time(8), end=time(8)).is_quiet(time(8))


def test_next_allowed(taishan: Profile) -> None:
    quiet = taishan.quiet_hours
    noon = datetime(2026, 11, 20, 12, tzinfo=SHANGHAI)
    assert quiet.next_allowed(noon) is noon
    late = datetime(2026, 11, 20, 22, 30, tzinfo=SHANGHAI)
    assert quiet.next_allowed(late) == datetime(2026, 11, 21, 8, tzinfo=SHANGHAI)
    early = datetime(2026, 11, 21, 3, tzinfo=SHANGHAI)
    assert quiet.next_allowed(early) == datetime(2026, 11, 21, 8, tzinfo=SHANGHAI)
    # 14:00 UTC is 22:00 in Shanghai: quiet there, so the answer is 08:00 local, in UTC.
    utc = datetime.fromisoformat("2026-11-20T14:00:00+00:00")
    allowed = quiet.next_allowed(utc)
    assert allowed == datetime.fromisoformat("2026-11-21T00:00:00+00:00")
    assert allowed.utcoffset() == utc.utcoffset()
    with pytest.raises(ValueError):
        quiet.next_allowed(datetime(2026, 11, 20, 22))


# --- bad files -----------------------------------------------------------------------------

LEVEL_3 = '[levels.3]\nlabel = "基本满意"\nscore = 6\n'

BAD_EDITS = [
    ("unknown key", "taishan", 'city = "台山"', 'city = "台山"\ncolour = "red"', "colour"),
    ("unknown nested key", "taishan", "[ivr]\n", "[ivr]\nbeep = true\n", "ivr.beep"),
    ("missing level", "taishan", LEVEL_3, "", "levels.3"),
    (
        "extra level",
        "taishan",
        LEVEL_3,
        LEVEL_3 + '[levels.6]\nlabel = "x"\nscore = 1\n',
        "levels.6",
    ),
    ("score not a number", "taishan", "score = 6", 'score = "six"', "levels.3.score"),
    ("wrong label", "sanmenxia", 'label = "不满意"', 'label = "差"', "levels.4.label"),
    ("bad unit", "sanmenxia", 'unit = "days"', 'unit = "weeks"', "ticket_deadlines[1].unit"),
    ("zero amount", "taishan", "amount = 10", "amount = 0", "ticket_deadlines[0].amount"),
    (
        "duplicate rule",
        "sanmenxia",
        'name = "rectify"',
        'name = "verify"',
        "ticket_deadlines[1].name",
    ),
    ("duplicate digit", "taishan", "digit = 2\n", "digit = 1\n", "tags.4[1].digit"),
    ("digit 0", "sanmenxia", "digit = 3\n", "digit = 0\n", "tags.4[2].digit"),
    (
        "sixth phone reason",
        "taishan",
        'text = "办事指南未列明应提交的材料"\n',
        'text = "办事指南未列明应提交的材料"\nspoken = "指南不全"\ndigit = 5\n',
        "tags.4[7].digit",
    ),
    ("spoken too long", "sanmenxia", '"答复不清"', '"业务不熟答复不清楚"', "tags.5[1].spoken"),
    ("text too long to speak", "sanmenxia", 'spoken = "答复不清"\n', "", "tags.5[1].spoken"),
    ("duplicate code", "taishan", 'code = "staff_hostile"', 'code = "delayed"', "tags.5[0].code"),
    ("bad kind", "sanmenxia", 'kind = "staff"', 'kind = "window"', "tags.4[0].kind"),
    ("bad timezone", "taishan", '"Asia/Shanghai"', '"Asia/Shanghia"', "timezone"),
    ("bad default", "sanmenxia", "level = 3", "level = 7", "default_rating.level"),
    ("ticket level 0", "taishan", "ticket_levels = [4, 5]", "ticket_levels = [0]", "ticket_levels"),
    ("string bool", "taishan", "enabled = true", 'enabled = "yes"', "reminder.enabled"),
    ("quiet as text", "taishan", "start = 21:00:00", 'start = "21:00"', "quiet_hours.start"),
    ("date as text", "taishan", "holidays = []", 'holidays = ["2027-01-01"]', "holidays[0]"),
    ("bad region", "taishan", '"440781"', '"4407"', "central_store.region_code"),
    ("no channel", "taishan", 'api = "5"', "", "central_store.channel_codes.api"),
    ("no appeal", "sanmenxia", "[appeal]\nallowed = true\n", "[appeal_]\n", "appeal"),
    ("bracketed signature", "taishan", '"台山12345"', '"【台山12345】"', "sms.signature"),
    ("opt word both ways", "taishan", '["订阅", "START"]', '["TD"]', "sms.opt_in_words[0]"),
    ("missing template", "taishan", "opted_in = ", "opted_in_x = ", "sms.templates.opted_in"),
    ("unknown placeholder", "taishan", "诉求{case_no}已办结", "诉求{case}已办结", "invitation"),
    ("placeholder spec", "taishan", "{label}。感谢", "{label!r}。感谢", "templates.confirmation"),
    ("unknown channel", "taishan", 'api = "5"', 'fax = "5"', "central_store.channel_codes.fax"),
    ("appeal w/o kinds", "taishan", 'kinds = ["staff"]', "kinds = []", "appeal.kinds"),
    ("adjusted weekday", "taishan", "workdays = []", "workdays = [2027-01-04]", "workdays[0]"),
]


@pytest.mark.parametrize(
    ("profile", "old", "new", "key"),
    [case[1:] for case in BAD_EDITS],
    ids=[case[0] for case in BAD_EDITS],
)
def test_bad_profile_names_file_and_key(
    tmp_path: Path, profile: str, old: str, new: str, key: str
) -> None:
    text = _text(profile)
    assert old in text, "the edit no longer applies to the shipped profile"
    path = tmp_path / f"bad_{profile}.toml"
    path.write_text(text.replace(old, new, 1), "utf-8")
    with pytest.raises(ProfileError) as info:
        load_profile(str(path))
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert key in message, message


def test_unknown_key_says_so(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(_text("taishan").replace("[ivr]\n", "[ivr]\nbeep = true\n"), "utf-8")
    with pytest.raises(ProfileError, match=r"ivr\.beep: unknown key"):
        load_profile(str(path))


def test_broken_toml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(_text("taishan").replace("[ivr]", "[ivr", 1), "utf-8")
    with pytest.raises(ProfileError, match=r"broken\.toml: broken TOML: .*line \d+") as info:
        load_profile(str(path))
    assert str(info.value).startswith(str(path))


def test_missing_file_is_a_profile_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(ProfileError, match=r"nowhere\.toml: cannot read profile") as info:
        load_profile(str(missing))
    assert "sanmenxia, taishan" in str(info.value)
    with pytest.raises(ProfileError, match="cannot read profile"):
        load_profile("atlantis")


def test_not_utf8_is_a_profile_error(tmp_path: Path) -> None:
    path = tmp_path / "gbk.toml"
    path.write_bytes(_text("taishan").encode("gbk"))
    with pytest.raises(ProfileError, match=r"gbk\.toml: not UTF-8"):
        load_profile(str(path))


def test_quiet_hours_default_binds_each_profiles_own_zone(tmp_path: Path) -> None:
    text = _text("taishan").replace("[quiet_hours]\nstart = 21:00:00\nend = 08:00:00\n", "")
    path = tmp_path / "berlin.toml"
    path.write_text(text.replace('"Asia/Shanghai"', '"Europe/Berlin"'), "utf-8")
    berlin = load_profile(str(path))
    shanghai = load_profile("taishan")
    at = datetime.fromisoformat("2026-11-20T13:30:00+00:00")  # 21:30 Shanghai, 14:30 Berlin
    assert berlin.quiet_hours.next_allowed(at) is at
    assert shanghai.quiet_hours.next_allowed(at) == datetime(2026, 11, 21, 8, tzinfo=SHANGHAI)
