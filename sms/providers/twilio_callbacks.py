"""Twilio's webhooks: replies on /sms/twilio/inbound, delivery receipts on /sms/twilio/status.

Both sit behind the `?key=` guard (sms/providers/plugin.py) and are checked with Twilio's
signature over PINGJIA_PUBLIC_URL + the path and query (a proxy in front changes the URL we
see, not the one Twilio signed); a bad or missing signature gets 403. What they carry goes to
`SmsEvents` in our vocabulary: Twilio's status words are mapped by STATUS_WORDS, and its
inbound-only words (`receiving`, `received`) are no delivery status and are not stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import structlog
from aiohttp import web

from rating.text import unstorable
from sms.providers import DeliveryReport, InboundReply, SmsEvents, SmsStatus
from sms.providers.plugin import Answer, CallbackDoc, CallbackGuard
from sms.providers.twilio_signature import SignatureCheck

log = structlog.get_logger("pingjia.sms")
INBOUND_PATH = "/sms/twilio/inbound"
STATUS_PATH = "/sms/twilio/status"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
# Twilio's message statuses (PLATFORM.md) in our vocabulary, which only moves forward.
STATUS_WORDS: dict[str, SmsStatus] = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "queued",
    "sent": "sent",
    "partially_delivered": "sent",  # some segments arrived: not a failure to retry
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
}
# Statuses Twilio reports that are no delivery status of a message we sent.
INBOUND_WORDS = frozenset({"receiving", "received"})


def our_status(word: str) -> SmsStatus:
    """A Twilio status word in our vocabulary; queued for one we do not know (a send's
    first status is never more than that)."""
    return STATUS_WORDS.get(word, "queued")


def twiml() -> web.Response:
    return web.Response(text=EMPTY_TWIML, content_type="text/xml")


class TwilioCallbacks:
    """The two routes, handing what Twilio posts to `events`."""

    def __init__(
        self,
        events: SmsEvents,
        auth_token: str,
        public_url: str,
        clock: Callable[[], datetime],
    ) -> None:
        self.events = events
        self.clock = clock
        self.validator = SignatureCheck(auth_token)
        self.public_url = public_url.rstrip("/")

    def routes(self, guard: CallbackGuard) -> list[web.RouteDef]:
        return [
            *guard.routes(INBOUND_PATH, self.inbound, twiml),
            *guard.routes(STATUS_PATH, self.status, lambda: web.Response(status=204)),
        ]

    async def _signed_form(self, request: web.Request) -> dict[str, str]:
        """The form Twilio posted, once its signature checks out; 403 otherwise."""
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        signature = request.headers.get("X-Twilio-Signature", "")
        url = self.public_url + request.path_qs
        if not signature or not self.validator.valid(url, form, signature):
            log.warning("twilio webhook with a bad signature refused", path=request.path)
            raise web.HTTPForbidden(reason=f"bad X-Twilio-Signature for {request.path}")
        for name, value in form.items():
            problem = unstorable(name) or unstorable(value)
            if problem is not None:  # refused before anything is stored, on every database
                raise web.HTTPBadRequest(reason=f"field {name!r} holds {problem}")
        return form

    @staticmethod
    def _field(form: Mapping[str, str], name: str, limit: int = 64) -> str:
        value = form.get(name, "").strip()
        if not value or len(value) > limit:
            raise web.HTTPBadRequest(reason=f"{name} is missing or longer than {limit} characters")
        return value

    async def inbound(self, request: web.Request) -> web.StreamResponse:
        """A citizen's reply: stored once per MessageSid, handled in the background, answered
        by our own message; Twilio waits for nothing but this 2xx."""
        form = await self._signed_form(request)
        sid = self._field(form, "MessageSid")
        sender = self._field(form, "From", 32)
        body = form.get("Body", "")
        if len(body) > 1600:
            raise web.HTTPBadRequest(reason="Body is longer than 1600 characters")
        reply = InboundReply(dedup_key=sid, sender=sender, text=body, to_address=form.get("To", ""))
        await self.events.reply(reply, self.clock())
        return twiml()

    async def status(self, request: web.Request) -> web.StreamResponse:
        """A delivery receipt for a message we sent."""
        form = await self._signed_form(request)
        sid = self._field(form, "MessageSid")
        word = form.get("MessageStatus") or form.get("SmsStatus") or ""
        if word in INBOUND_WORDS:
            return web.Response(status=204)
        if word not in STATUS_WORDS:
            reason = f"MessageStatus {word!r} is not a Twilio message status"
            raise web.HTTPBadRequest(reason=reason)
        error = (form.get("ErrorCode") or "").strip()[:64] or None
        report = DeliveryReport(provider_id=sid, status=STATUS_WORDS[word], error=error)
        if not await self.events.delivery(report, self.clock()):
            log.info("status for a message we do not know", sid=sid, status=word)
        return web.Response(status=204)


FORM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "MessageSid": {"type": "string", "minLength": 1, "maxLength": 64},
        "From": {"type": "string", "minLength": 1, "maxLength": 32},
        "To": {"type": "string", "maxLength": 32},
        "Body": {"type": "string", "maxLength": 1600},
        "MessageStatus": {"type": "string", "maxLength": 32},
    },
    "required": ["MessageSid"],
}
AUTH = (
    "the secret `?key=` (PINGJIA_SMS_CALLBACK_KEY), and Twilio's own signature: "
    "X-Twilio-Signature, HMAC-SHA1 with TWILIO_AUTH_TOKEN over PINGJIA_PUBLIC_URL + path + query "
    "and the sorted form; a bad or missing signature is answered 403 and nothing is stored"
)
REFUSED = Answer("a bad or missing signature (403), a bad field (400)")
DOCS = {
    INBOUND_PATH: CallbackDoc(
        "Twilio inbound message webhook: a citizen's reply",
        AUTH,
        "application/x-www-form-urlencoded",
        FORM,
        {"200": Answer("stored (empty TwiML)", "text/xml", EMPTY_TWIML), "4XX": REFUSED},
        signature_header="X-Twilio-Signature",
    ),
    STATUS_PATH: CallbackDoc(
        "Twilio status callback: the delivery status of a message we sent",
        AUTH,
        "application/x-www-form-urlencoded",
        FORM,
        {"204": Answer("recorded (or no message of ours has that sid)", None), "4XX": REFUSED},
        signature_header="X-Twilio-Signature",
    ),
}
