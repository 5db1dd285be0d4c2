"""Policy profiles: everything the cities do differently, as data validated on load."""

from __future__ import annotations

import string
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from rating.policy.levels import CHANNELS, LABELS, Level

LEVEL_NUMBERS = (1, 2, 3, 4, 5)
TEMPLATE_NAMES = tuple(
    "invitation reminder confirmation already_rated ask_reason help opted_out opted_in"
    " second_invitation ticket_deadline".split()
)
# ticket_no, deadline (its title), due (local MM月DD日HH:MM) and state fill ticket_deadline.
PLACEHOLDERS = frozenset({"case_no", "link", "label", "ticket_no", "deadline", "due", "state"})

Slug = Annotated[StrictStr, Field(pattern=r"^[a-z][a-z0-9_]*$")]
Text = Annotated[StrictStr, Field(min_length=1)]
TemplateCode = Annotated[StrictStr, Field(pattern=r"^\S+$", max_length=64)]  # SMS_123, 1987001
Positive = Annotated[StrictInt, Field(gt=0)]
LevelNo = Annotated[StrictInt, Field(ge=1, le=5)]
LevelKey = Annotated[int, Field(ge=1, le=5)]  # lax: TOML table keys arrive as strings
StrictDate = Annotated[date, Strict()]
StrictTime = Annotated[time, Strict()]
Channel = Literal["ivr", "survey", "sms", "web", "system", "api"]  # rating.levels.CHANNELS


class Invalid(ValueError):
    """A validation failure at `key`, relative to the model that raised it."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}" if key else reason)
        self.key = key
        self.reason = reason


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LevelSpec(_Model):
    label: Text
    score: Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]


class DefaultRating(_Model):
    level: LevelNo
    after_days: Positive  # natural (calendar) days after completion


class Reminder(_Model):
    enabled: StrictBool
    delay_hours: Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]


PHONE_REASONS = 5  # a spoken reason menu longer than this outlasts a caller (about 15 s)
SPOKEN_CHARS = 8  # the longest reason label the phone menu speaks


class Tag(_Model):
    code: Slug
    text: Text
    kind: Literal["matter", "staff"]
    # The key in the IVR's reason menu; a tag without one is offered on the page and by SMS.
    digit: Annotated[StrictInt, Field(ge=1, le=9)] | None = None
    # What the phone menu says for it, when `text` is too long to speak (at most 8 characters).
    spoken: Annotated[StrictStr, Field(min_length=1, max_length=SPOKEN_CHARS)] | None = None

    @property
    def spoken_label(self) -> str:
        """The words the reason menu speaks for this tag."""
        return self.spoken or self.text


class DeadlineRule(_Model):
    name: Slug
    title: Text
    amount: Positive
    unit: Literal["hours", "days", "workdays"]


class QuietHours(_Model):
    start: StrictTime = time(21, 0)
    end: StrictTime = time(8, 0)
    _tz: ZoneInfo | None = PrivateAttr(default=None)  # bound by the owning Profile

    def is_quiet(self, local: time) -> bool:
        """Whether a local clock time falls in the quiet period (start inclusive, end exclusive)."""
        t = local.replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= t < self.end
        if self.start > self.end:  # wraps past midnight
            return t >= self.start or t < self.end
        return False  # start == end: no quiet period

    def next_allowed(self, at: datetime, tz: ZoneInfo | None = None) -> datetime:
        """`at` if not quiet, else the end of the quiet period, in `at`'s timezone."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"next_allowed needs an aware datetime, got {at!r}")
        zone: tzinfo = tz or self._tz or at.tzinfo
        local = at.astimezone(zone)
        if not self.is_quiet(local.time()):
            return at
        day = local.date()
        if self.start > self.end and local.time() >= self.start:
            day += timedelta(days=1)
        end = datetime.combine(day, self.end, tzinfo=zone)
        return end.astimezone(at.tzinfo)


class SmsSettings(_Model):
    signature: Text
    daily_cap: Positive  # messages we start to one number per local day
    opt_out_words: Annotated[list[Text], Field(min_length=1)]
    opt_in_words: list[Text]
    templates: dict[StrictStr, Text]
    # Per template provider (its registry name), our template id -> the code the provider
    # approved for it (`[sms.template_codes.<provider>]`; PINGJIA_SMS_TEMPLATE_CODES overrides).
    template_codes: dict[Slug, dict[StrictStr, TemplateCode]] = {}

    @field_validator("signature")
    @classmethod
    def _no_brackets(cls, value: str) -> str:
        if any(c in value for c in "【】[]"):
            raise Invalid("", "write the signature without brackets; 【…】 is added when sending")
        return value

    @field_validator("templates")
    @classmethod
    def _check_templates(cls, value: dict[str, str]) -> dict[str, str]:
        for name in TEMPLATE_NAMES:
            if name not in value:
                raise Invalid(name, "missing template")
        for name, text in value.items():
            try:
                fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(text)]
            except ValueError as exc:
                raise Invalid(name, f"bad braces ({exc}); write {{{{ for a brace") from None
            for field, spec, conv in fields:
                if field is not None and field not in PLACEHOLDERS:
                    known = ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
                    raise Invalid(name, f"unknown placeholder {{{field}}} (known: {known})")
                if spec or conv:
                    raise Invalid(name, f"write {{{field}}} without a format spec or conversion")
        return value

    @model_validator(mode="after")
    def _words_disjoint(self) -> SmsSettings:
        out = {w.casefold() for w in self.opt_out_words}
        for i, word in enumerate(self.opt_in_words):
            if word.casefold() in out:
                raise Invalid(f"opt_in_words[{i}]", f"{word!r} is also an opt-out word")
        for provider, codes in self.template_codes.items():
            for name in codes:
                if name not in self.templates:
                    raise Invalid(f"template_codes.{provider}.{name}", "no such template")
        return self


class IvrSettings(_Model):
    key_timeout_ms: Positive = 6000
    max_tries: Positive = 3
    confirm: StrictBool = False
    record_max_seconds: Positive = 60
    record_silence_seconds: Positive = 3
    # Whether this city rates by outbound phone call (电话评价): pingjia places the call through
    # AMI into the `survey` flow when an agent asks for one (POST /api/v1/calls/survey), and
    # the `outbound_surveys` sweep calls pending cases itself (ivr/survey_sweep.py).
    outbound_survey: StrictBool = False
    # The sweep calls a case this long after it was completed and registered. The SMS
    # invitation leaves 2 minutes after registration; half an hour lets the citizen answer it
    # (or the link) before the phone rings, instead of being asked twice at once.
    survey_delay_minutes: Annotated[StrictInt, Field(ge=0)] = 30
    survey_tries: Positive = 2  # survey calls per case at most, agents' requests included
    survey_retry_hours: Positive = 24  # one try a day: no second ring the same day


class WorkdayOverrides(_Model):
    holidays: list[StrictDate] = []
    workdays: list[StrictDate] = []  # adjusted working weekends (调休)

    @model_validator(mode="after")
    def _check(self) -> WorkdayOverrides:
        for i, day in enumerate(self.workdays):
            if day in self.holidays:
                raise Invalid(f"workdays[{i}]", f"{day} is also listed in holidays")
            if day.weekday() < 5:
                raise Invalid(f"workdays[{i}]", f"{day} is a weekday; list adjusted weekends only")
        return self


class CentralStoreMapping(_Model):
    level_codes: dict[LevelKey, Text]
    channel_codes: dict[Channel, Text]
    send_phone_in_clear: StrictBool = False
    region_code: Annotated[StrictStr, Field(pattern=r"^\d{6}$")]

    @field_validator("channel_codes", mode="before")
    @classmethod
    def _survey_is_a_phone_call(cls, codes: object) -> object:
        # Profiles written before outbound surveys had their own channel: a survey is a phone
        # call (电话) for the central store, so it takes the ivr code unless one is given.
        if isinstance(codes, dict) and "survey" not in codes and "ivr" in codes:
            return {**codes, "survey": codes["ivr"]}
        return codes

    @model_validator(mode="after")
    def _complete(self) -> CentralStoreMapping:
        missing = [f"level_codes.{n}" for n in LEVEL_NUMBERS if n not in self.level_codes]
        missing += [f"channel_codes.{c}" for c in CHANNELS if c not in self.channel_codes]
        if missing:
            raise Invalid(missing[0], "missing")
        return self


class AppealPolicy(_Model):
    allowed: StrictBool
    kinds: frozenset[Literal["staff", "matter"]] = frozenset()

    @model_validator(mode="after")
    def _consistent(self) -> AppealPolicy:
        if self.allowed != bool(self.kinds):
            raise Invalid("kinds", "must be non-empty exactly when appeals are allowed")
        return self


class Profile(_Model):
    name: Slug
    city: Text
    timezone: StrictStr = "Asia/Shanghai"
    prompt_language: Text = "cmn"
    levels: dict[LevelKey, LevelSpec]
    default_rating: DefaultRating
    reminder: Reminder
    ticket_levels: frozenset[LevelNo]
    reason_required_levels: frozenset[LevelNo] = frozenset()
    tags: dict[LevelKey, list[Tag]] = {}
    ticket_deadlines: list[DeadlineRule]
    quiet_hours: QuietHours = QuietHours()
    sms: SmsSettings
    ivr: IvrSettings = IvrSettings()
    workday_overrides: WorkdayOverrides = WorkdayOverrides()
    central_store: CentralStoreMapping
    appeal: AppealPolicy
    second_rating: StrictBool = False

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
            raise Invalid("", f"unknown timezone {value!r}; use an IANA name") from None
        return value

    @field_validator("levels")
    @classmethod
    def _five_levels(cls, value: dict[int, LevelSpec]) -> dict[int, LevelSpec]:
        for level in LEVEL_NUMBERS:
            if level not in value:
                raise Invalid(str(level), "missing; levels must be exactly 1 to 5")
            expected = LABELS[Level(level)]
            if value[level].label != expected:
                raise Invalid(f"{level}.label", f"must be {expected!r} (rating/policy/levels.py)")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> Profile:
        seen_names: set[str] = set()
        for i, rule in enumerate(self.ticket_deadlines):
            if rule.name in seen_names:
                raise Invalid(f"ticket_deadlines[{i}].name", f"duplicate name {rule.name!r}")
            seen_names.add(rule.name)
        seen_codes: set[str] = set()
        for level, tags in self.tags.items():
            if len(tags) > 9:
                raise Invalid(f"tags.{level}", f"{len(tags)} tags; the keypad menu holds 9")
            digits: set[int] = set()
            for i, tag in enumerate(tags):
                if tag.code in seen_codes:
                    raise Invalid(f"tags.{level}[{i}].code", f"duplicate code {tag.code!r}")
                seen_codes.add(tag.code)
                if tag.digit is None:
                    continue
                if tag.digit in digits:
                    raise Invalid(f"tags.{level}[{i}].digit", f"digit {tag.digit} already used")
                digits.add(tag.digit)
                if len(digits) > PHONE_REASONS:
                    raise Invalid(
                        f"tags.{level}[{i}].digit",
                        f"the phone offers at most {PHONE_REASONS} reasons (a menu of about "
                        "15 s); leave `digit` out of the others: they stay on the rating page "
                        "and in SMS replies",
                    )
                if len(tag.spoken_label) > SPOKEN_CHARS:
                    raise Invalid(
                        f"tags.{level}[{i}].spoken",
                        f"the phone menu speaks {tag.spoken_label!r}, over {SPOKEN_CHARS} "
                        "characters; give the tag a shorter `spoken` label",
                    )
        delay = timedelta(minutes=self.ivr.survey_delay_minutes)
        if self.ivr.outbound_survey and delay >= timedelta(days=self.default_rating.after_days):
            raise Invalid(
                "ivr.survey_delay_minutes",
                f"{self.ivr.survey_delay_minutes} minutes is not before the default rating "
                f"({self.default_rating.after_days} days): no case would be called",
            )
        # Bind the zone on a copy: a default QuietHours instance may be shared.
        quiet = self.quiet_hours.model_copy()
        quiet._tz = self.tz
        object.__setattr__(self, "quiet_hours", quiet)
        return self

    @property
    def tz(self) -> ZoneInfo:
        """The profile's timezone."""
        return ZoneInfo(self.timezone)

    def _spec(self, level: int) -> LevelSpec:
        try:
            return self.levels[int(level)]
        except KeyError:
            raise ValueError(f"unknown level {level!r}; levels are 1 to 5") from None

    def score(self, level: int) -> float:
        """The score of a level (Taishan Art. 10)."""
        return self._spec(level).score

    def label(self, level: int) -> str:
        """The Chinese label of a level."""
        return self._spec(level).label

    def opens_ticket(self, level: int) -> bool:
        """Whether a rating at this level opens a bad-review ticket (差评工单)."""
        return level in self.ticket_levels

    def reason_required(self, level: int) -> bool:
        """Whether a rating at this level needs a tag or a written reason."""
        return level in self.reason_required_levels

    def tags_for(self, level: int) -> list[Tag]:
        """The reason tags offered for a level, in menu order."""
        return list(self.tags.get(int(level), []))

    def tag(self, code: str) -> Tag | None:
        """The tag with this code, or None."""
        for tags in self.tags.values():
            for tag in tags:
                if tag.code == code:
                    return tag
        return None
