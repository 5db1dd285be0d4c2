"""Twilio's webhooks: replies on /sms/twilio/inbound, delivery receipts on /sms/twilio/status.

Both are checked with Twilio's signature over PINGJIA_PUBLIC_URL + the path (a proxy in front
changes the URL we see, not the one Twilio signed); a bad or missing signature gets 403.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog
from aiohttp import web

from rating.text import unstorable
from sms.replies.stage1_intake import Received
from sms.service import SmsService
from sms.signature import SignatureCheck

log = structlog.get_logger("pingjia.sms")
INBOUND_PATH = "/sms/twilio/inbound"
STATUS_PATH = "/sms/twilio/status"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
# Message statuses Twilio reports (PLATFORM.md); anything else is refused.
STATUSES = frozenset(
    "queued sending sent failed delivered undelivered receiving received accepted scheduled "
    "read partially_delivered canceled".split()
)


class TwilioWebhooks:
    """The two routes over one SMS service."""

    def __init__(
        self,
        sms: SmsService,
        auth_token: str | None,
        public_url: str,
        clock: Callable[[], datetime],
    ) -> None:
        self.sms = sms
        self.validator = SignatureCheck(auth_token) if auth_token else None
        self.public_url = public_url.rstrip("/")
        self.clock = clock

    def install(self, app: web.Application) -> None:
        app.router.add_post(INBOUND_PATH, self.inbound)
        app.router.add_post(STATUS_PATH, self.status)

    async def _signed_form(self, request: web.Request) -> dict[str, str]:
        """The form Twilio posted, once its signature checks out; 403 otherwise."""
        if self.validator is None:
            raise web.HTTPForbidden(
                reason="Twilio webhooks are refused: TWILIO_AUTH_TOKEN is not set, so their "
                "signature cannot be checked"
            )
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        signature = request.headers.get("X-Twilio-Signature", "")
        url = self.public_url + request.path_qs
        if not signature or not self.validator.valid(url, form, signature):
            log.warning("twilio webhook with a bad signature refused", path=request.path)
            raise web.HTTPForbidden(reason=f"bad X-Twilio-Signature for {url}")
        for name, value in form.items():
            problem = unstorable(name) or unstorable(value)
            if problem is not None:  # refused before anything is stored, on every database
                raise web.HTTPBadRequest(reason=f"field {name!r} holds {problem}")
        return form

    @staticmethod
    def _field(form: dict[str, str], name: str, limit: int = 64) -> str:
        value = form.get(name, "").strip()
        if not value or len(value) > limit:
            raise web.HTTPBadRequest(reason=f"{name} is missing or longer than {limit} characters")
        return value

    async def inbound(self, request: web.Request) -> web.Response:
        """A citizen's reply: handled once per MessageSid, answered by our own message."""
        form = await self._signed_form(request)
        sid = self._field(form, "MessageSid")
        sender = self._field(form, "From", 32)
        body = form.get("Body", "")
        if len(body) > 1600:
            raise web.HTTPBadRequest(reason="Body is longer than 1600 characters")
        # Answered once the reply is stored (sms/intake.py); it is handled, and answered by
        # our own message, in the background: Twilio waits for nothing but this 2xx.
        intake = self.sms.inbox.intake
        received = await intake.accept(sid, sender, form.get("To", ""), body, self.clock())
        if isinstance(received, Received) and not intake.queued:
            intake.start(received)  # queued: the `sms_inbox` sweep handles it
        return web.Response(text=EMPTY_TWIML, content_type="text/xml")

    async def status(self, request: web.Request) -> web.Response:
        """A delivery receipt for a message we sent."""
        form = await self._signed_form(request)
        sid = self._field(form, "MessageSid")
        status = form.get("MessageStatus") or form.get("SmsStatus") or ""
        if status not in STATUSES:
            raise web.HTTPBadRequest(
                reason=f"MessageStatus {status!r} is not a Twilio message status"
            )
        known = await self.sms.record_status(sid, status, form.get("ErrorCode"), self.clock())
        if not known:
            log.info("status for a message we do not know", sid=sid, status=status)
        return web.Response(status=204)
