"""One driver per registered SMS provider, so the same end-to-end tests run through each.

A driver starts the provider's fake (the real SDK or protocol in the loop), hands the
provider's settings block pointing at it, counts the messages the fake received, and plays
the provider calling us: a citizen's reply, a delivery receipt, a callback without the key.
Adding a provider to the registry means adding its driver here (tests/test_sms_providers.py
fails until then).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, cast

from aiohttp.test_utils import TestClient
from pydantic_settings import BaseSettings

from pingjia.composition import Services
from rating.policy.profile import TEMPLATE_NAMES
from sms.providers.aliyun import AliyunSmsSettings
from sms.providers.console import ConsoleProvider, ConsoleSmsSettings
from sms.providers.smpp import SmppSettings
from sms.providers.tencent import TencentSmsSettings
from sms.service import as_events
from sms.smpp.pdu import ESM_UDHI
from sms.storage.models import SmsMessage
from tests.fakes.aliyun_sms import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    FakeAliyunSms,
    report_item,
    up_item,
)
from tests.fakes.smsc import SUBMIT_SM, FakeSmsc, deliver_sm_body
from tests.fakes.tencent_sms import (
    APP_ID,
    SECRET_ID,
    SECRET_KEY,
    FakeTencentSms,
    reply_body,
    status_report,
)
from tests.fakes.twilio_api import FakeTwilio, sign
from tests.sms_support import KEY, PHONE, PUBLIC, SENDER, SID, TOKEN, twilio_settings

SMPP_SOURCE = "1069012345"
CONSOLE_SENDER = "10690012345"  # the console provider's own number (its settings' default)


def template_codes(first: int, prefix: str = "") -> dict[str, str]:
    """Approved codes, one per template id, as a city maps them (PINGJIA_SMS_TEMPLATE_CODES)."""
    return {name: f"{prefix}{first + n}" for n, name in enumerate(TEMPLATE_NAMES)}


class Driver:
    """What the end-to-end tests ask of a provider and its fake."""

    name = ""
    no_receipts = ""  # why the provider reports no delivery at all, when it does not
    keyed_paths: tuple[str, ...] = ()  # callback paths that must refuse a missing key
    no_http_callbacks = ""  # why keyed_paths is empty, when it is
    no_extensions = ""  # why a reply never names an extension (扩展码), when it does not

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def settings(self) -> BaseSettings:
        raise NotImplementedError

    def app_settings(self) -> dict[str, Any]:
        """pingjia's own settings this provider needs (a template provider's codes)."""
        return {}

    async def started(self, services: Services) -> None:
        """After the services are built (a provider's own session binds here)."""

    def sent(self, services: Services) -> int:
        """How many messages the fake (or the console) received."""
        raise NotImplementedError

    async def reply(
        self, client: TestClient, text: str, reply_id: str, extension: str = ""
    ) -> None:
        """The citizen's reply, to our number + `extension` (扩展码) when one is given."""
        raise NotImplementedError

    async def receipt(self, client: TestClient, row: SmsMessage, delivered: bool) -> None:
        raise NotImplementedError


class ConsoleDriver(Driver):
    name = "console"
    no_receipts = "the console provider prints: every message is `sent` at once, none reported"
    keyed_paths = ("/sms/console/reply",)

    def settings(self) -> BaseSettings:
        return ConsoleSmsSettings(_env_file=None)  # type: ignore[call-arg]

    def sent(self, services: Services) -> int:
        return len(cast(ConsoleProvider, services.sms.provider).sent)

    async def reply(
        self, client: TestClient, text: str, reply_id: str, extension: str = ""
    ) -> None:
        to = CONSOLE_SENDER + extension if extension else ""
        body = {"id": reply_id, "from": PHONE, "to": to, "body": text}
        response = await client.post(f"/sms/console/reply?key={KEY}", json=body)
        assert response.status == 200, await response.text()


class TwilioDriver(Driver):
    name = "twilio"
    keyed_paths = ("/sms/twilio/inbound", "/sms/twilio/status")
    no_extensions = "Twilio numbers carry no sub-number extension (扩展码)"

    def __init__(self) -> None:
        self.fake = FakeTwilio()

    async def start(self) -> None:
        await self.fake.start()

    async def stop(self) -> None:
        await self.fake.stop()

    def settings(self) -> BaseSettings:
        return twilio_settings(self.fake.url)

    def sent(self, services: Services) -> int:
        return len(self.fake.requests)

    async def _post(self, client: TestClient, path: str, form: Mapping[str, str]) -> None:
        url = f"{path}?key={KEY}"
        headers = {"X-Twilio-Signature": sign(TOKEN, PUBLIC + url, dict(form))}
        response = await client.post(url, data=dict(form), headers=headers)
        assert response.status in (200, 204), await response.text()

    async def reply(
        self, client: TestClient, text: str, reply_id: str, extension: str = ""
    ) -> None:
        assert not extension, self.no_extensions
        form = {"MessageSid": reply_id, "AccountSid": SID, "From": "+86" + PHONE}
        await self._post(client, "/sms/twilio/inbound", {**form, "To": SENDER, "Body": text})

    async def receipt(self, client: TestClient, row: SmsMessage, delivered: bool) -> None:
        word = "delivered" if delivered else "undelivered"
        form = {"MessageSid": row.provider_sid or "", "MessageStatus": word, "AccountSid": SID}
        await self._post(client, "/sms/twilio/status", form)


class TencentDriver(Driver):
    name = "tencent"
    keyed_paths = ("/sms/tencent/status", "/sms/tencent/reply")

    def __init__(self) -> None:
        self.fake = FakeTencentSms()
        self.replies: dict[str, int] = {}  # reply id → its Unix time (a repeat keeps it)

    async def start(self) -> None:
        await self.fake.start()

    async def stop(self) -> None:
        await self.fake.stop()

    def settings(self) -> BaseSettings:
        return TencentSmsSettings(  # type: ignore[call-arg]
            _env_file=None,
            secret_id=SECRET_ID,
            secret_key=SECRET_KEY,
            app_id=APP_ID,
            endpoint=self.fake.url,
        )

    def app_settings(self) -> dict[str, Any]:
        return {"sms_template_codes": json.dumps(template_codes(1_987_000))}

    def sent(self, services: Services) -> int:
        return len(self.fake.requests)

    async def _post(self, client: TestClient, path: str, body: Any) -> None:
        response = await client.post(f"{path}?key={KEY}", json=body)
        assert response.status == 200, await response.text()
        assert await response.json() == {"result": 0, "errmsg": "OK"}

    async def reply(
        self, client: TestClient, text: str, reply_id: str, extension: str = ""
    ) -> None:
        at = self.replies.setdefault(reply_id, 1_795_000_000 + 60 * len(self.replies))
        await self._post(client, "/sms/tencent/reply", reply_body(text, PHONE, at, extension))

    async def receipt(self, client: TestClient, row: SmsMessage, delivered: bool) -> None:
        report = status_report(row.provider_sid or "", delivered, PHONE)
        await self._post(client, "/sms/tencent/status", [report])


class AliyunDriver(Driver):
    name = "aliyun"
    keyed_paths = ("/sms/aliyun/report", "/sms/aliyun/up")

    def __init__(self) -> None:
        self.fake = FakeAliyunSms()
        self.replies: dict[str, int] = {}  # reply id → its sequence_id (a repeat keeps it)

    async def start(self) -> None:
        await self.fake.start()

    async def stop(self) -> None:
        await self.fake.stop()

    def settings(self) -> BaseSettings:
        return AliyunSmsSettings(  # type: ignore[call-arg]
            _env_file=None,
            access_key_id=ACCESS_KEY_ID,
            access_key_secret=ACCESS_KEY_SECRET,
            endpoint=self.fake.url,
        )

    def app_settings(self) -> dict[str, Any]:
        return {"sms_template_codes": json.dumps(template_codes(460_775_000, "SMS_"))}

    def sent(self, services: Services) -> int:
        return len(self.fake.requests)

    async def _post(self, client: TestClient, path: str, items: list[dict[str, Any]]) -> None:
        response = await client.post(f"{path}?key={KEY}", json=items)
        assert response.status == 200, await response.text()
        assert await response.json() == {"code": 0, "msg": "接收成功"}

    async def reply(
        self, client: TestClient, text: str, reply_id: str, extension: str = ""
    ) -> None:
        sequence_id = self.replies.setdefault(reply_id, 90_000 + len(self.replies))
        item = up_item(text, sequence_id, PHONE, dest_code=extension)
        await self._post(client, "/sms/aliyun/up", [item])

    async def receipt(self, client: TestClient, row: SmsMessage, delivered: bool) -> None:
        report = report_item(row.provider_sid or "", row.dedupe_key, delivered, PHONE)
        await self._post(client, "/sms/aliyun/report", [report])


class SmppDriver(Driver):
    name = "smpp"
    no_http_callbacks = (
        "SMPP has no HTTP callbacks: receipts and replies come as deliver_sm on the session "
        "pingjia binds to its SMSC (its system_id and password are the guard), and the "
        "journeys drive them so"
    )

    def __init__(self) -> None:
        self.fake = FakeSmsc()
        self.services: Services | None = None

    async def start(self) -> None:
        await self.fake.start()

    async def stop(self) -> None:
        await self.fake.stop()

    def settings(self) -> BaseSettings:
        return SmppSettings(  # type: ignore[call-arg]
            _env_file=None,
            host="127.0.0.1",
            port=self.fake.port,
            system_id="pingjia",
            password="pw12345",
            source_addr=SMPP_SOURCE,
        )

    async def started(self, services: Services) -> None:
        await services.sms_provider.start(as_events(services.sms))
        await self.fake.wait_bound()

    def sent(self, services: Services) -> int:
        # A long message goes as segments: count each message once (its first segment).
        submits = self.fake.commands(SUBMIT_SM)
        return sum(
            1
            for s in submits
            if not s.fields["esm_class"] & ESM_UDHI or s.fields["short_message"][5] == 1
        )

    async def reply(
        self, client: TestClient, text: str, reply_id: str, extension: str = ""
    ) -> None:
        to = SMPP_SOURCE + extension
        body = deliver_sm_body("86" + PHONE, to, text.encode("utf-16-be"))
        assert await self.fake.deliver(body) == 0

    async def receipt(self, client: TestClient, row: SmsMessage, delivered: bool) -> None:
        # Every segment's receipt: the message is reported when the last one is in.
        first = int(row.provider_sid or "0", 16)
        stat = "DELIVRD" if delivered else "UNDELIV"
        for n in range(row.segments):
            text = (
                f"id:{first + n:x} sub:001 dlvrd:001 submit date:2611201000 done date:2611201001 "
                f"stat:{stat} err:000 text:"
            ).encode()
            body = deliver_sm_body("86" + PHONE, SMPP_SOURCE, text, esm_class=0x04, data_coding=0)
            assert await self.fake.deliver(body) == 0


DRIVERS: dict[str, Callable[[], Driver]] = {
    "console": ConsoleDriver,
    "twilio": TwilioDriver,
    "tencent": TencentDriver,
    "aliyun": AliyunDriver,
    "smpp": SmppDriver,
}
