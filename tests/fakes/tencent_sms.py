"""A fake Tencent Cloud API endpoint for SMS: a real aiohttp server on 127.0.0.1.

It takes what the SDK (`tencentcloud-sdk-python-sms`, API 2021-01-11) sends: a JSON POST to `/`
with `X-TC-Action: SendSms`, `X-TC-Version: 2021-01-11`, `X-TC-Timestamp`, `X-TC-Region` and an
`Authorization: TC3-HMAC-SHA256 Credential=ID/DATE/sms/tc3_request, SignedHeaders=…,
Signature=…` header, which it checks with the test secret (computed here from Tencent's
published algorithm, not with the SDK's code, so a signing fault shows). It answers as Tencent
does: HTTP 200, `Content-Type: application/json`, `{"Response": {"SendStatusSet": […],
"RequestId"}}`, or `{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`.

Tell it to fail (`fail_next`: a request error or a per-number Code), to stall (`latency`), to
close the connection without answering (`drop_next`), or to answer something odd
(`answer_next`); read `requests`. Over HTTP the same through `/_requests`, `/_reset` and
`/_set_response`, as our other fakes. `post_callback` (with `status_report` and `reply_body`)
plays Tencent calling our callbacks.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.recording import serve_local

SECRET_ID = "AKIDfakeTencentSmsTestSecretId00"
SECRET_KEY = "fakeTencentSmsTestSecretKey00000"
APP_ID = "1400787878"
SKEW = 300  # Tencent refuses a signature whose timestamp is more than 5 minutes off


@dataclass
class Received:
    """One request as the fake saw it (signature already checked)."""

    action: str
    version: str
    region: str
    secret_id: str
    headers: dict[str, str]
    body: dict[str, Any]
    serials: list[str] = field(default_factory=list)  # the SerialNo of each number answered


@dataclass
class Odd:
    """An answer to give instead of Tencent's: any status, body and content type."""

    status: int
    body: bytes
    content_type: str | None = "application/json"


def tc3_signature(secret_key: str, date: str, service: str, string_to_sign: str) -> str:
    """Tencent's TC3-HMAC-SHA256: a key derived from the date and service signs the string."""

    def mac(key: bytes, text: str) -> bytes:
        return hmac.new(key, text.encode(), hashlib.sha256).digest()

    signing = mac(mac(mac(("TC3" + secret_key).encode(), date), service), "tc3_request")
    return hmac.new(signing, string_to_sign.encode(), hashlib.sha256).hexdigest()


class SignatureError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_signature(request: web.Request, body: bytes, secrets: dict[str, str]) -> str:
    """The SecretId that signed `request`; SignatureError with Tencent's code otherwise."""
    auth = request.headers.get("Authorization", "")
    algorithm, _, rest = auth.partition(" ")
    parts = dict(p.strip().split("=", 1) for p in rest.split(",") if "=" in p)
    if algorithm != "TC3-HMAC-SHA256" or not {"Credential", "SignedHeaders", "Signature"} <= set(
        parts
    ):
        raise SignatureError("AuthFailure.InvalidAuthorization", f"bad Authorization: {auth!r}")
    secret_id, date, service, terminator = (parts["Credential"].split("/") + [""] * 4)[:4]
    if secret_id not in secrets:
        raise SignatureError("AuthFailure.SecretIdNotFound", f"no SecretId {secret_id!r}")
    stamp = request.headers.get("X-TC-Timestamp", "")
    if not stamp.isdigit() or abs(time.time() - int(stamp)) > SKEW:
        raise SignatureError("AuthFailure.SignatureExpire", f"timestamp {stamp!r} out of range")
    if date != datetime.fromtimestamp(int(stamp), UTC).strftime("%Y-%m-%d") or (
        service,
        terminator,
    ) != ("sms", "tc3_request"):
        raise SignatureError("AuthFailure.SignatureFailure", f"bad credential scope {parts!r}")
    signed = parts["SignedHeaders"].split(";")
    canonical_headers = "".join(f"{name}:{request.headers.get(name, '')}\n" for name in signed)
    canonical = "\n".join(
        [
            request.method,
            request.path,
            request.query_string,
            canonical_headers,
            parts["SignedHeaders"],
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{date}/{service}/tc3_request"
    to_sign = "\n".join(
        ["TC3-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    expected = tc3_signature(secrets[secret_id], date, service, to_sign)
    if not hmac.compare_digest(expected, parts["Signature"]) or "host" not in signed:
        raise SignatureError("AuthFailure.SignatureFailure", "the signature does not match")
    return secret_id


def _json(payload: Any) -> web.Response:
    # Exactly `application/json`: the SDK reads an Error only under that content type.
    return web.Response(
        body=json.dumps(payload, ensure_ascii=False).encode(),
        headers={"Content-Type": "application/json"},
    )


def _error(code: str, message: str) -> web.Response:
    return _json({"Response": {"Error": {"Code": code, "Message": message}, "RequestId": _rid()}})


def _rid() -> str:
    return str(uuid.uuid4())


@dataclass
class FakeTencentSms:
    """The API endpoint on a random local port; `url` is its base, for the endpoint setting."""

    latency: float = 0.0
    secrets: dict[str, str] = field(default_factory=lambda: {SECRET_ID: SECRET_KEY})
    requests: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # the codes of requests refused as unsigned
    # What the next requests get, in order: ("request"|"number", code, message), "drop", Odd.
    plan: list[tuple[str, str, str] | str | Odd] = field(default_factory=list)
    url: str = ""
    peak: int = 0  # the most requests it held at once (a client's concurrency bound shows)
    _in_flight: int = 0
    _runner: web.AppRunner | None = None

    def fail_next(
        self, code: str, message: str = "fake failure", count: int = 1, where: str = "request"
    ) -> None:
        """Answer the next `count` requests with Tencent error `code`: as the request's Error
        (`where="request"`) or as the Code of each number's SendStatus (`where="number"`)."""
        self.plan.extend([(where, code, message)] * count)

    def drop_next(self, count: int = 1) -> None:
        """Close the connection of the next `count` requests without answering."""
        self.plan.extend(["drop"] * count)

    def answer_next(self, status: int, body: bytes, content_type: str | None = None) -> None:
        self.plan.append(Odd(status, body, content_type))

    def reset(self) -> None:
        self.requests.clear()
        self.refused.clear()
        self.plan.clear()
        self.latency = 0.0
        self.peak = 0

    def sent_references(self) -> Counter[str]:
        """How many times each SessionContext reached the fake."""
        return Counter(str(r.body.get("SessionContext")) for r in self.requests)

    async def _api(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            secret_id = check_signature(request, body, self.secrets)
        except SignatureError as exc:
            self.refused.append(exc.code)
            return _error(exc.code, str(exc))
        headers = request.headers
        action, version = headers.get("X-TC-Action", ""), headers.get("X-TC-Version", "")
        if (action, version) != ("SendSms", "2021-01-11"):
            return _error("InvalidAction", f"no action {action!r} in version {version!r}")
        if headers.get("Content-Type") != "application/json":
            return _error("FailedOperation.JsonParseFail", "the body must be application/json")
        try:
            payload = json.loads(body)
        except ValueError:
            return _error("FailedOperation.JsonParseFail", "the body is not JSON")
        received = Received(
            action, version, headers.get("X-TC-Region", ""), secret_id, dict(headers), payload
        )
        self.requests.append(received)
        if self.latency:  # recorded first: a request that times out still reached Tencent
            self._in_flight += 1
            self.peak = max(self.peak, self._in_flight)
            try:
                await asyncio.sleep(self.latency)
            finally:
                self._in_flight -= 1
        step = self.plan.pop(0) if self.plan else None
        if step == "drop":
            assert request.transport is not None
            request.transport.close()  # aiohttp writes nothing to a closed transport
            return web.Response()
        if isinstance(step, Odd):
            odd = web.Response(status=step.status, body=step.body)
            if step.content_type:
                odd.headers["Content-Type"] = step.content_type
            return odd
        if isinstance(step, tuple) and step[0] == "request":
            return _error(step[1], step[2])
        for name in ("SmsSdkAppId", "TemplateId", "PhoneNumberSet"):
            if not payload.get(name):
                return _error("MissingParameter", f"the request has no {name}")
        code, message = ("Ok", "send success") if step is None else step[1:]
        statuses = [
            {
                "SerialNo": f"2433:{uuid.uuid4().int % 10**19:019d}" if code == "Ok" else "",
                "PhoneNumber": phone,
                "Fee": 1 if code == "Ok" else 0,
                "SessionContext": payload.get("SessionContext", ""),
                "Code": code,
                "Message": message,
                "IsoCode": "CN" if str(phone).startswith("+86") else "",
            }
            for phone in payload["PhoneNumberSet"]
        ]
        received.serials = [status["SerialNo"] for status in statuses]
        return _json({"Response": {"SendStatusSet": statuses, "RequestId": _rid()}})

    async def _requests(self, _request: web.Request) -> web.Response:
        return web.json_response([r.body for r in self.requests])

    async def _reset(self, _request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({})

    async def _set_response(self, request: web.Request) -> web.Response:
        """`{"latency"?: seconds, "fail"?: {"code", "message"?, "count"?, "where"?},
        "drop"?: count}`."""
        spec = await request.json()
        if "latency" in spec:
            self.latency = float(spec["latency"])
        if "fail" in spec:
            fail = spec["fail"]
            self.fail_next(
                fail["code"],
                fail.get("message", "fake failure"),
                int(fail.get("count", 1)),
                fail.get("where", "request"),
            )
        if "drop" in spec:
            self.drop_next(int(spec["drop"]))
        return web.json_response({})

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/", self._api)
        app.router.add_get("/_requests", self._requests)
        app.router.add_post("/_reset", self._reset)
        app.router.add_post("/_set_response", self._set_response)
        self._runner, self.url = await serve_local(app)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def status_report(
    sid: str, success: bool = True, mobile: str = "13812345678", errmsg: str | None = None
) -> dict[str, str]:
    """One item of a status callback, as Tencent words it."""
    return {
        "user_receive_time": "2026-11-20 10:00:05",
        "nationcode": "86",
        "mobile": mobile,
        "report_status": "SUCCESS" if success else "FAIL",
        "errmsg": errmsg or ("DELIVRD" if success else "MK:0005"),
        "description": "用户短信送达成功" if success else "用户短信未送达",
        "sid": sid,
    }


def reply_body(
    text: str, mobile: str = "13812345678", at: int = 1_795_000_000, extend: str = ""
) -> dict[str, Any]:
    """A reply callback's body, as Tencent words it."""
    return {
        "extend": extend,
        "mobile": mobile,
        "nationcode": "86",
        "sign": "台山12345",
        "text": text,
        "time": at,
    }


async def post_callback(url: str, payload: Any) -> tuple[int, Any]:
    """POST `payload` as Tencent does (JSON) to one of our callbacks; its status and JSON."""
    async with aiohttp.ClientSession() as session, session.post(url, json=payload) as response:
        return response.status, await response.json(content_type=None)


async def _serve_forever(latency: float) -> None:
    fake = FakeTencentSms(latency=latency)
    print(await fake.start(), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    # A fake in its own process (bench/tencent_sms_bench.py): prints its URL, serves until killed.
    import sys

    asyncio.run(_serve_forever(float(sys.argv[1]) if len(sys.argv) > 1 else 0.0))
