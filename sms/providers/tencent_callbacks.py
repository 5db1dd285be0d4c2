"""The two callbacks Tencent Cloud SMS posts (SPEC.md section 4), read into our vocabulary.

- `POST /sms/tencent/status`: a JSON array of `{user_receive_time, nationcode, mobile,
  report_status: SUCCESS|FAIL, errmsg, description, sid}`, one DeliveryReport each;
- `POST /sms/tencent/reply`: `{extend, mobile, nationcode, sign, text, time}` (time in Unix
  seconds), one InboundReply.

Each is answered `{"result": 0, "errmsg": "OK"}` once `SmsEvents` has it. Tencent pushes a
status again when it gets no answer, so repeats reach the events, which make them no-ops. A
body is read whole and checked whole before anything is handed on: a malformed one gets 400
(`{"error": {"code", "message"}}`, the house shape) and nothing is recorded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web

from sms.providers import DeliveryReport, InboundReply, SmsEvents, SmsStatus
from sms.providers.plugin import Answer, CallbackDoc

log = structlog.get_logger("pingjia.sms")
STATUS_PATH = "/sms/tencent/status"
REPLY_PATH = "/sms/tencent/reply"
ACCEPTED = {"result": 0, "errmsg": "OK"}  # what Tencent wants back, or it pushes again
# A status callback batches reports (about 250 bytes each); a reply is one short message.
STATUS_MAX_BYTES = 512 * 1024
REPLY_MAX_BYTES = 16 * 1024
STATUS_WORDS: dict[str, SmsStatus] = {"SUCCESS": "delivered", "FAIL": "undelivered"}
# Replies dated before this or more than a day ahead are not Unix seconds of a real reply
# (milliseconds, a typo): refused rather than stored with a nonsense time.
EARLIEST_REPLY = datetime(2000, 1, 1, tzinfo=UTC)


class BadCallback(Exception):
    """A callback body we cannot read; its message says what is wrong, for the 400."""


class TooLarge(BadCallback):
    """A callback body over its limit (413)."""


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _refusal(kind: str, exc: BadCallback) -> web.Response:
    log.warning("tencent callback refused", kind=kind, reason=str(exc))
    if isinstance(exc, TooLarge):
        return _error(413, "body_too_large", f"Tencent {kind} callback refused: {exc}")
    return _error(400, "bad_request", f"Tencent {kind} callback refused: {exc}")


async def read_json(request: web.Request, limit: int) -> Any:
    """The request's JSON body, read to at most `limit` bytes (our own limit, not the app's:
    a status batch may be larger than an API body); BadCallback otherwise."""
    too_large = TooLarge(f"the body is larger than {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    raw = bytearray()
    while chunk := await request.content.read(64 * 1024):
        raw += chunk
        if len(raw) > limit:  # chunked: no Content-Length to refuse up front
            raise too_large
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadCallback("the body is not UTF-8") from None
    except ValueError as exc:
        raise BadCallback(f"the body is not JSON: {exc}") from None


def _text(item: dict[str, Any], name: str, where: str, limit: int, required: bool = True) -> str:
    """The string field `name` of `item`, stripped; BadCallback when absent, not a string,
    too long or holding a NUL byte (PostgreSQL refuses those in text)."""
    value = item.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise BadCallback(f"{where}: {name} must be a string, got {type(value).__name__}")
    if len(value) > limit or "\x00" in value:
        raise BadCallback(f"{where}: {name} is longer than {limit} characters or holds NUL")
    if required and not value.strip():
        raise BadCallback(f"{where}: {name} is empty")
    return value.strip()


def delivery_reports(body: Any) -> list[DeliveryReport]:
    """The reports of a status callback, every one checked before any is used."""
    if not isinstance(body, list):
        raise BadCallback("a status callback is a JSON array of reports")
    reports = []
    for index, item in enumerate(body):
        where = f"report {index}"
        if not isinstance(item, dict):
            raise BadCallback(f"{where} is not an object")
        sid = _text(item, "sid", where, 64)
        word = _text(item, "report_status", where, 16)
        if word not in STATUS_WORDS:
            raise BadCallback(f"{where}: report_status {word!r} is neither SUCCESS nor FAIL")
        errmsg = _text(item, "errmsg", where, 64, required=False)
        description = _text(item, "description", where, 200, required=False)
        error = None
        if word == "FAIL":
            error = " ".join(filter(None, (errmsg, description)))[:200] or "FAIL"
        reports.append(DeliveryReport(provider_id=sid, status=STATUS_WORDS[word], error=error))
    return reports


def inbound_reply(body: Any) -> InboundReply:
    """The citizen's reply in a reply callback."""
    if not isinstance(body, dict):
        raise BadCallback("a reply callback is a JSON object")
    where = "reply"
    mobile = _text(body, "mobile", where, 20)
    nationcode = _text(body, "nationcode", where, 4, required=False) or "86"
    if not mobile.isdigit() or not nationcode.lstrip("+").isdigit():
        raise BadCallback(f"{where}: mobile and nationcode must be digits")
    nationcode = nationcode.lstrip("+")
    text = _text(body, "text", where, 1600, required=False)
    extend = _text(body, "extend", where, 16, required=False)
    if extend and not extend.isdigit():
        raise BadCallback(f"{where}: extend {extend!r} is not digits")
    _text(body, "sign", where, 64, required=False)  # checked, not used: the 【签名】 replied to
    sent_at = _unix_time(body.get("time"), where)
    sender = mobile if nationcode == "86" else f"+{nationcode}{mobile}"
    # Tencent gives a reply no id: the same reply pushed twice carries the same fields.
    fingerprint = "\x1f".join((nationcode, mobile, str(int(sent_at.timestamp())), extend, text))
    key = "tencent-" + hashlib.sha256(fingerprint.encode()).hexdigest()[:40]
    return InboundReply(
        dedup_key=key,
        sender=sender,
        text=text,
        extension=extend or None,
        sent_at=sent_at,
    )


def _unix_time(value: Any, where: str) -> datetime:
    """Unix seconds (a number, or digits in a string) as an aware UTC datetime."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadCallback(f"{where}: time must be Unix seconds, got {value!r}")
    try:
        at = datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise BadCallback(f"{where}: time {value!r} is out of range") from None
    if at < EARLIEST_REPLY or at.year > 9000:
        raise BadCallback(f"{where}: time {value!r} is not Unix seconds of a reply")
    return at


class TencentCallbacks:
    """The two routes, handing what Tencent posts to `events`."""

    def __init__(self, events: SmsEvents, clock: Callable[[], datetime]) -> None:
        self.events = events
        self.clock = clock

    async def status(self, request: web.Request) -> web.Response:
        """Delivery reports: one DeliveryReport each, in the order Tencent sent them."""
        try:
            reports = delivery_reports(await read_json(request, STATUS_MAX_BYTES))
        except BadCallback as exc:
            return _refusal("status", exc)
        at = self.clock()
        for report in reports:
            if not await self.events.delivery(report, at):
                log.info("tencent status for a message we do not know", sid=report.provider_id)
        return web.json_response(ACCEPTED)

    async def reply(self, request: web.Request) -> web.Response:
        """A citizen's reply, handed on once per dedup key (the events make repeats no-ops)."""
        try:
            reply = inbound_reply(await read_json(request, REPLY_MAX_BYTES))
        except BadCallback as exc:
            return _refusal("reply", exc)
        await self.events.reply(reply, self.clock())
        return web.json_response(ACCEPTED)


_TEXT = {"type": "string", "maxLength": 64}
AUTH = (
    "Tencent Cloud signs nothing: the secret `?key=` (PINGJIA_SMS_CALLBACK_KEY) in the URL "
    "registered with Tencent is the proof; PINGJIA_TENCENT_SMS_CALLBACK_ALLOW, when set, also "
    "refuses other addresses (403)"
)
ANSWERS = {
    "200": Answer("taken: Tencent stops pushing it", example=ACCEPTED),
    "400": Answer("a body that is not what Tencent posts: nothing taken"),
    "413": Answer("a body over its limit"),
}
DOCS = {
    STATUS_PATH: CallbackDoc(
        "Tencent Cloud status callback: delivery reports of messages we sent",
        AUTH,
        "application/json",
        {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "user_receive_time": _TEXT,
                    "nationcode": _TEXT,
                    "mobile": _TEXT,
                    "report_status": {"type": "string", "enum": ["SUCCESS", "FAIL"]},
                    "errmsg": _TEXT,
                    "description": _TEXT,
                    "sid": _TEXT,
                },
            },
        },
        ANSWERS,
    ),
    REPLY_PATH: CallbackDoc(
        "Tencent Cloud reply callback: a citizen's reply (a rating, a reason, TD)",
        AUTH,
        "application/json",
        {
            "type": "object",
            "properties": {
                "extend": {"type": "string", "maxLength": 16},
                "mobile": _TEXT,
                "nationcode": _TEXT,
                "sign": _TEXT,
                "text": {"type": "string", "maxLength": 1600},
                "time": {"type": "integer", "description": "Unix seconds"},
            },
        },
        ANSWERS,
    ),
}
