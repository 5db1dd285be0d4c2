"""The two HTTP pushes of Aliyun SMS (SPEC.md section 4), read into our vocabulary.

- `POST /sms/aliyun/report` (SmsReport): a JSON array of `{phone_number, send_time,
  report_time, success, err_code, err_msg, sms_size, biz_id, out_id}`, one DeliveryReport each
  (`biz_id` is what SendSms answered, `out_id` our message reference);
- `POST /sms/aliyun/up` (SmsUpReport): a JSON array of `{phone_number, send_time, content,
  sign_name, dest_code, sequence_id}`, one InboundReply each, its dedup key from
  `sequence_id` (Aliyun's id of the reply, the same on every push of it).

Aliyun pushes a batch again after 1, 5 and 10 minutes unless it gets HTTP 200 with
`{"code": 0, "msg": "接收成功"}` in time (700 ms), so repeats reach `SmsEvents`, which make them
no-ops; the items of a batch are handed on together, so a batch of 100 replies is stored in
one go (sms/intake.py batches what arrives at once). A body that is not a JSON array gets 400
(`{"error": {"code", "message"}}`, the house shape) and nothing is recorded. An array with
unreadable items has its readable items handed on and is answered 400 naming the others:
Aliyun pushes it again (the good items are then repeats, no-ops) and the operator sees why in
the log, so a bad item never costs the good ones beside it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

import structlog
from aiohttp import web

from sms.providers import DeliveryReport, InboundReply, SmsEvents, SmsStatus
from sms.providers.plugin import Answer, CallbackDoc

log = structlog.get_logger("pingjia.sms")
REPORT_PATH = "/sms/aliyun/report"
UP_PATH = "/sms/aliyun/up"
ACCEPTED = {"code": 0, "msg": "接收成功"}  # what Aliyun wants back, or it pushes again
# Aliyun batches up to a few hundred items (about 300 bytes each) per push.
MAX_BYTES = 1024 * 1024
# `success` of a report, in our words.
STATUS_WORDS: Mapping[str, SmsStatus] = {"true": "delivered", "false": "undelivered"}
BEIJING = ZoneInfo("Asia/Shanghai")  # Aliyun's times are Beijing time without an offset
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

T = TypeVar("T")


class BadCallback(Exception):
    """A callback body or item we cannot read; its message says what is wrong."""


class TooLarge(BadCallback):
    """A body over MAX_BYTES (413)."""


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def accepted() -> web.Response:
    return web.json_response(ACCEPTED)


async def read_array(request: web.Request, limit: int = MAX_BYTES) -> list[Any]:
    """The request's body as a JSON array, read to at most `limit` bytes; BadCallback else."""
    too_large = TooLarge(f"the body is larger than {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    raw = bytearray()
    while chunk := await request.content.read(64 * 1024):
        raw += chunk
        if len(raw) > limit:  # chunked: no Content-Length to refuse up front
            raise too_large
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadCallback("the body is not UTF-8") from None
    except ValueError as exc:
        raise BadCallback(f"the body is not JSON: {exc}") from None
    if not isinstance(body, list):
        raise BadCallback("the body must be a JSON array of items")
    return body


def _text(item: Mapping[str, Any], name: str, limit: int, required: bool = True) -> str:
    """The string field `name`, stripped; BadCallback when absent (if required), not a string
    (numbers are taken as their digits), too long or holding a NUL byte."""
    value = item.get(name)
    if value is None or value == "":
        if required:
            raise BadCallback(f"{name} is missing")
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise BadCallback(f"{name} must be a string, got {type(value).__name__}")
    if len(value) > limit or "\x00" in value:
        raise BadCallback(f"{name} is longer than {limit} characters or holds NUL")
    if required and not value.strip():
        raise BadCallback(f"{name} is empty")
    return value.strip()


def _phone(item: Mapping[str, Any]) -> str:
    phone = _text(item, "phone_number", 20)
    if not phone.lstrip("+").isdigit():
        raise BadCallback(f"phone_number {phone[:3]}… is not a number")
    return phone


def _time(item: Mapping[str, Any], name: str, required: bool = True) -> datetime | None:
    text = _text(item, name, 32, required)
    if not text:
        return None
    try:
        return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=BEIJING)
    except ValueError:
        raise BadCallback(f"{name} {text!r} is not yyyy-MM-dd HH:mm:ss") from None


def delivery_report(item: Any) -> DeliveryReport:
    """One SmsReport item."""
    if not isinstance(item, dict):
        raise BadCallback("not an object")
    success = item.get("success")
    if isinstance(success, str) and success.lower() in STATUS_WORDS:
        success = success.lower() == "true"
    if not isinstance(success, bool):
        raise BadCallback(f"success must be true or false, got {success!r}")
    biz_id = _text(item, "biz_id", 64)
    out_id = _text(item, "out_id", 64, required=False)
    err_code = _text(item, "err_code", 64, required=False)
    err_msg = _text(item, "err_msg", 200, required=False)
    _phone(item)
    _time(item, "report_time", required=False)
    _text(item, "sms_size", 8, required=False)
    error = None
    if not success:
        error = " ".join(filter(None, (err_code, err_msg)))[:200] or "FAILED"
    status = STATUS_WORDS["true" if success else "false"]
    return DeliveryReport(provider_id=biz_id, status=status, error=error, reference=out_id or None)


def inbound_reply(item: Any) -> InboundReply:
    """One SmsUpReport item."""
    if not isinstance(item, dict):
        raise BadCallback("not an object")
    sequence_id = _text(item, "sequence_id", 32)
    if not sequence_id.isdigit():
        raise BadCallback(f"sequence_id {sequence_id!r} is not a number")
    phone = _phone(item)
    content = _text(item, "content", 1600, required=False)
    dest_code = _text(item, "dest_code", 20, required=False)
    if dest_code and not dest_code.isdigit():
        raise BadCallback(f"dest_code {dest_code!r} is not digits")
    _text(item, "sign_name", 64, required=False)  # checked, not used: the 【签名】 replied to
    return InboundReply(
        dedup_key=f"aliyun-{sequence_id}",
        sender=phone,
        text=content,
        extension=dest_code or None,
        sent_at=_time(item, "send_time", required=False),
    )


@dataclass(frozen=True)
class Read(Generic[T]):
    """The readable items of a batch and what was wrong with the others."""

    items: list[T]
    problems: list[str]


def read_items(body: Sequence[Any], read: Callable[[Any], T]) -> Read[T]:
    items: list[T] = []
    problems: list[str] = []
    for index, item in enumerate(body):
        try:
            items.append(read(item))
        except BadCallback as exc:
            problems.append(f"item {index}: {exc}")
    return Read(items, problems)


class AliyunCallbacks:
    """The two routes, handing what Aliyun pushes to `events`."""

    def __init__(self, events: SmsEvents, clock: Callable[[], datetime]) -> None:
        self.events = events
        self.clock = clock

    async def _batch(
        self,
        request: web.Request,
        kind: str,
        read: Callable[[Any], T],
        hand_on: Callable[[T, datetime], Awaitable[object]],
    ) -> web.Response:
        try:
            body = await read_array(request)
        except TooLarge as exc:
            log.warning("aliyun callback refused", kind=kind, reason=str(exc))
            return _error(413, "body_too_large", f"Aliyun {kind} refused: {exc}")
        except BadCallback as exc:
            log.warning("aliyun callback refused", kind=kind, reason=str(exc))
            return _error(400, "bad_request", f"Aliyun {kind} refused: {exc}")
        batch = read_items(body, read)
        at = self.clock()
        # Together: the replies of one push share the intake's INSERT and commit.
        await asyncio.gather(*(hand_on(item, at) for item in batch.items))
        if batch.problems:
            log.warning(
                "aliyun callback items refused",
                kind=kind,
                taken=len(batch.items),
                refused=len(batch.problems),
                problems=batch.problems[:10],
            )
            return _error(
                400,
                "bad_request",
                f"Aliyun {kind}: {len(batch.items)} items taken, {len(batch.problems)} refused: "
                + "; ".join(batch.problems[:10]),
            )
        return accepted()

    async def report(self, request: web.Request) -> web.Response:
        """SmsReport: delivery reports, one DeliveryReport each."""
        return await self._batch(request, "SmsReport", delivery_report, self._delivery)

    async def up(self, request: web.Request) -> web.Response:
        """SmsUpReport: citizens' replies, each handed on once per sequence_id."""
        return await self._batch(request, "SmsUpReport", inbound_reply, self.events.reply)

    async def _delivery(self, report: DeliveryReport, at: datetime) -> None:
        if not await self.events.delivery(report, at):
            log.info("aliyun report for a message we do not know", biz_id=report.provider_id)


def _array_of(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "object", "properties": dict(fields)}}


_TEXT = {"type": "string", "maxLength": 64}
AUTH = (
    "Aliyun signs nothing: the secret `?key=` (PINGJIA_SMS_CALLBACK_KEY) in the URL registered "
    "with Aliyun is the proof; PINGJIA_ALIYUN_SMS_CALLBACK_ALLOW, when set, also refuses "
    "other addresses (403)"
)
ANSWERS = {
    "200": Answer("taken: Aliyun stops pushing this batch", example=ACCEPTED),
    "400": Answer("not a JSON array, or items refused (named; the good ones are taken): "
                  "Aliyun pushes the batch again"),
    "413": Answer(f"a body over {MAX_BYTES} bytes"),
}  # fmt: skip
DOCS = {
    REPORT_PATH: CallbackDoc(
        "Aliyun SmsReport: delivery reports of messages we sent",
        AUTH,
        "application/json",
        _array_of(
            {
                "phone_number": _TEXT,
                "send_time": _TEXT,
                "report_time": _TEXT,
                "success": {"type": "boolean"},
                "err_code": _TEXT,
                "err_msg": _TEXT,
                "sms_size": _TEXT,
                "biz_id": _TEXT,
                "out_id": _TEXT,
            }
        ),
        ANSWERS,
    ),
    UP_PATH: CallbackDoc(
        "Aliyun SmsUpReport: citizens' replies (a rating, a reason, TD)",
        AUTH,
        "application/json",
        _array_of(
            {
                "phone_number": _TEXT,
                "send_time": _TEXT,
                "content": {"type": "string", "maxLength": 1600},
                "sign_name": _TEXT,
                "dest_code": {"type": "string", "maxLength": 20},
                "sequence_id": {"type": "integer"},
            }
        ),
        ANSWERS,
    ),
}
