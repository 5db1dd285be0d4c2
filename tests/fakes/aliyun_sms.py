"""A fake Aliyun SMS API endpoint (dysmsapi 2017-05-25): a real aiohttp server on 127.0.0.1.

It takes what the SDK (`alibabacloud-dysmsapi20170525` over `alibabacloud-tea-openapi`) sends
for SendSms: a POST to `/` with the action's parameters in the query string (`PhoneNumbers`,
`SignName`, `TemplateCode`, `TemplateParam`, `OutId`, `SmsUpExtendCode`), an empty body, the
headers `x-acs-action: SendSms`, `x-acs-version: 2017-05-25`, `x-acs-date`,
`x-acs-signature-nonce`, `x-acs-content-sha256`, and `Authorization: ACS3-HMAC-SHA256
Credential=AK,SignedHeaders=…,Signature=…` (POP signature v3, the SDK's default). The fake
checks that signature with the test secret, computed here from Aliyun's published algorithm,
not with the SDK's code, so a signing fault shows; a nonce used twice is refused, as Aliyun
does. It answers as Aliyun does: HTTP 200 `{"Code": "OK", "Message": "OK", "BizId",
"RequestId"}`, or a business refusal with HTTP 200 and its `isv.*` Code, or a gateway
refusal (signature, key) with HTTP 4xx.

Tell it to fail (`fail_next`), to stall (`latency`), to close the connection without
answering (`drop_next`), or to answer something odd (`answer_next`); read `requests`. Over
HTTP the same through `/_requests`, `/_reset` and `/_set_response`, as our other fakes.
`post_callback` (with `report_item` and `up_item`) plays Aliyun pushing to our callbacks.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from tests.fakes.recording import serve_local

ACCESS_KEY_ID = "LTAI5tFakeAliyunSmsTestKey"
ACCESS_KEY_SECRET = "fakeAliyunSmsTestAccessKeySecret0"
SKEW = 15 * 60  # Aliyun refuses an x-acs-date more than 15 minutes off
# Headers a v3 signature must cover (Aliyun's documentation of the algorithm).
MUST_SIGN = {"host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce"}
SEND_PARAMS = ("PhoneNumbers", "SignName", "TemplateCode")


@dataclass
class Received:
    """One SendSms as the fake saw it (signature already checked)."""

    action: str
    version: str
    access_key_id: str
    params: dict[str, str]  # the query's parameters, decoded
    headers: dict[str, str]
    biz_id: str = ""
    peer: str = ""  # the client's address and port: one per connection it used


@dataclass
class Odd:
    """An answer to give instead of Aliyun's: any status, body and content type."""

    status: int
    body: bytes
    content_type: str | None = "application/json"


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _encode(value: str) -> str:
    return quote(value, safe="~")


def acs3_signature(
    secret: str,
    method: str,
    path: str,
    query: dict[str, str],
    headers: dict[str, str],
    signed: list[str],
    payload_hash: str,
) -> str:
    """ACS3-HMAC-SHA256: HMAC-SHA256 of the hashed canonical request, in hex."""
    canonical_query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(query.items()))
    canonical_headers = "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed)
    canonical = "\n".join(
        [method, path, canonical_query, canonical_headers, ";".join(signed), payload_hash]
    )
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    return hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(payload, ensure_ascii=False).encode(),
        headers={"Content-Type": "application/json;charset=utf-8"},
    )


def _rid() -> str:
    return str(uuid.uuid4()).upper()


@dataclass
class FakeAliyunSms:
    """The API endpoint on a random local port; `url` is its base, for the endpoint setting."""

    latency: float = 0.0
    secrets: dict[str, str] = field(default_factory=lambda: {ACCESS_KEY_ID: ACCESS_KEY_SECRET})
    requests: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # codes of requests refused unsigned
    # What the next requests get, in order: (http status, code, message), "drop", Odd.
    plan: list[tuple[int, str, str] | str | Odd] = field(default_factory=list)
    url: str = ""
    peak: int = 0  # the most requests it held at once
    _in_flight: int = 0
    _nonces: set[str] = field(default_factory=set)
    _runner: web.AppRunner | None = None

    def fail_next(
        self, code: str, message: str = "fake failure", count: int = 1, status: int = 200
    ) -> None:
        """Answer the next `count` requests with Aliyun error `code` (HTTP `status`: 200 for a
        business refusal, 4xx/5xx for the gateway's)."""
        self.plan.extend([(status, code, message)] * count)

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
        """How many times each OutId reached the fake."""
        return Counter(r.params.get("OutId", "") for r in self.requests)

    def check_signature(self, request: web.Request, body: bytes) -> str:
        """The AccessKey ID that signed `request`; Refused with Aliyun's code otherwise."""
        auth = request.headers.get("Authorization", "")
        algorithm, _, rest = auth.partition(" ")
        parts = dict(p.strip().split("=", 1) for p in rest.split(",") if "=" in p)
        if algorithm != "ACS3-HMAC-SHA256" or not {"Credential", "SignedHeaders", "Signature"} <= (
            set(parts)
        ):
            raise Refused(400, "IncompleteSignature", f"bad Authorization: {auth[:80]!r}")
        key_id = parts["Credential"]
        if key_id not in self.secrets:
            raise Refused(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        headers = {k.lower(): v for k, v in request.headers.items()}
        signed = parts["SignedHeaders"].split(";")
        if not MUST_SIGN <= set(signed) or signed != sorted(signed):
            raise Refused(400, "IncompleteSignature", f"SignedHeaders {signed!r}")
        payload_hash = hashlib.sha256(body).hexdigest()
        if headers.get("x-acs-content-sha256") != payload_hash:
            raise Refused(400, "SignatureDoesNotMatch", "x-acs-content-sha256 does not match")
        try:
            at = datetime.strptime(headers.get("x-acs-date", ""), "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            raise Refused(400, "InvalidTimeStamp.Format", "x-acs-date is not ISO 8601") from None
        if abs((datetime.now(UTC) - at.replace(tzinfo=UTC)).total_seconds()) > SKEW:
            raise Refused(400, "InvalidTimeStamp.Expired", "x-acs-date is out of range")
        query = {k: v for k, v in request.query.items()}
        expected = acs3_signature(
            self.secrets[key_id],
            request.method,
            request.path,
            query,
            headers,
            signed,
            payload_hash,
        )
        if not hmac.compare_digest(expected, parts["Signature"]):
            raise Refused(
                400,
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation.",
            )
        nonce = headers["x-acs-signature-nonce"]
        if nonce in self._nonces:
            raise Refused(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        self._nonces.add(nonce)
        return key_id

    async def _api(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            key_id = self.check_signature(request, body)
        except Refused as exc:
            self.refused.append(exc.code)
            return _json(
                {"RequestId": _rid(), "Code": exc.code, "Message": str(exc)}, status=exc.status
            )
        action = request.headers.get("x-acs-action", "")
        version = request.headers.get("x-acs-version", "")
        if (action, version) != ("SendSms", "2017-05-25"):
            return _json(
                {
                    "RequestId": _rid(),
                    "Code": "InvalidAction.NotFound",
                    "Message": f"no action {action!r} in version {version!r}",
                },
                status=404,
            )
        params = {k: v for k, v in request.query.items()}
        peer = request.transport.get_extra_info("peername") if request.transport else None
        received = Received(action, version, key_id, params, dict(request.headers), peer=str(peer))
        self.requests.append(received)
        if self.latency:  # recorded first: a request that times out still reached Aliyun
            self._in_flight += 1
            self.peak = max(self.peak, self._in_flight)
            try:
                await asyncio.sleep(self.latency)
            finally:
                self._in_flight -= 1
        step = self.plan.pop(0) if self.plan else None
        if step == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if isinstance(step, Odd):
            odd = web.Response(status=step.status, body=step.body)
            if step.content_type:
                odd.headers["Content-Type"] = step.content_type
            return odd
        if isinstance(step, tuple):
            status, code, message = step
            return _json({"RequestId": _rid(), "Code": code, "Message": message}, status=status)
        for name in SEND_PARAMS:
            if not params.get(name):
                return _json(
                    {
                        "RequestId": _rid(),
                        "Code": "MissingParameter",
                        "Message": f"{name} is mandatory for this action.",
                    },
                    status=400,
                )
        if "TemplateParam" in params:
            try:
                values = json.loads(params["TemplateParam"])
            except ValueError:
                values = None
            if not isinstance(values, dict):
                return _json(
                    {
                        "RequestId": _rid(),
                        "Code": "isv.INVALID_JSON_PARAM",
                        "Message": "JSON参数不合法，只接受字符串值",
                    }
                )
        received.biz_id = f"{uuid.uuid4().int % 10**18:018d}^0"
        return _json({"RequestId": _rid(), "Code": "OK", "Message": "OK", "BizId": received.biz_id})

    async def _requests(self, _request: web.Request) -> web.Response:
        return web.json_response([r.params for r in self.requests])

    async def _reset(self, _request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({})

    async def _set_response(self, request: web.Request) -> web.Response:
        """`{"latency"?: seconds, "fail"?: {"code", "message"?, "count"?, "status"?},
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
                int(fail.get("status", 200)),
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


def report_item(
    biz_id: str,
    out_id: str = "",
    success: bool = True,
    phone: str = "13812345678",
    err_code: str | None = None,
) -> dict[str, Any]:
    """One SmsReport item, as Aliyun words it."""
    return {
        "phone_number": phone,
        "send_time": "2026-11-20 10:00:00",
        "report_time": "2026-11-20 10:00:05",
        "success": success,
        "err_code": err_code or ("DELIVERED" if success else "MK:0005"),
        "err_msg": "用户接收成功" if success else "用户短信未送达",
        "sms_size": "1",
        "biz_id": biz_id,
        "out_id": out_id,
    }


def up_item(
    content: str,
    sequence_id: int = 1_000_001,
    phone: str = "13812345678",
    dest_code: str = "",
    send_time: str = "2026-11-20 10:01:00",
) -> dict[str, Any]:
    """One SmsUpReport item, as Aliyun words it."""
    return {
        "phone_number": phone,
        "send_time": send_time,
        "content": content,
        "sign_name": "台山12345",
        "dest_code": dest_code,
        "sequence_id": sequence_id,
    }


async def post_callback(url: str, payload: Any) -> tuple[int, Any]:
    """POST `payload` as Aliyun does (JSON) to one of our callbacks; its status and JSON."""
    async with aiohttp.ClientSession() as session, session.post(url, json=payload) as response:
        return response.status, await response.json(content_type=None)


async def _serve_forever(latency: float) -> None:
    fake = FakeAliyunSms(latency=latency)
    print(await fake.start(), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    # A fake in its own process (bench/aliyun_sms_bench.py): prints its URL, serves until killed.
    import sys

    asyncio.run(_serve_forever(float(sys.argv[1]) if len(sys.argv) > 1 else 0.0))
