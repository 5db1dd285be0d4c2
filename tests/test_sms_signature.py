"""Our X-Twilio-Signature check gives the SDK's `RequestValidator.validate` answer for every
input: signed with or without the port, over another URL, a query, an empty or Chinese form,
a garbage, empty, non-ASCII or undecodable signature, another token."""

from __future__ import annotations

import itertools

import pytest
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from sms.providers.twilio_signature import SignatureCheck

TOKEN = "sig-token"
URLS = [
    "https://12345.example.gov.cn/sms/twilio/inbound",
    "https://12345.example.gov.cn:443/sms/twilio/inbound",
    "http://127.0.0.1:8080/sms/twilio/inbound",
    "http://example.org/sms/twilio/status?x=1&bodySHA256=abc",
    "https://example.org:8443/p",
]
FORMS: list[dict[str, str]] = [
    {},
    {"MessageSid": "SM1", "From": "+8613912345678", "To": "+15005550006", "Body": "５ 态度太差"},
    {"Body": "", "b": "2", "a": "1", "A": "0", "NumMedia": "0"},
]


def _signatures(url: str, form: dict[str, str]) -> list[str]:
    sdk = RequestValidator(TOKEN)
    other = next(u for u in URLS if u != url)
    port_forms = [
        sdk.compute_signature(url.replace(":443", "").replace(":8080", ""), form),
        sdk.compute_signature(url.replace(".cn/", ".cn:443/").replace(".org/", ".org:80/"), form),
    ]
    return [
        sdk.compute_signature(url, form),
        *port_forms,
        sdk.compute_signature(other, form),
        RequestValidator("other-token").compute_signature(url, form),
        sdk.compute_signature(url, form)[:-1],
        "",
        "bm90IGEgc2lnbmF0dXJl",
        "签名",
        "\udcff\udcfe",
    ]


@pytest.mark.parametrize(("url", "form"), list(itertools.product(URLS, FORMS)))
def test_same_answer_as_the_sdk(url: str, form: dict[str, str]) -> None:
    sdk, ours = RequestValidator(TOKEN), SignatureCheck(TOKEN)
    answers = [
        (sdk.validate(url, form, s), ours.valid(url, form, s)) for s in _signatures(url, form)
    ]
    assert all(theirs == mine for theirs, mine in answers), answers
    assert answers[0] == (True, True)  # the exact signature always passes


def test_port_variants_pass_both_ways() -> None:
    sdk, ours = RequestValidator(TOKEN), SignatureCheck(TOKEN)
    form = FORMS[1]
    signed_without_port = sdk.compute_signature("https://h.example/p", form)
    assert ours.valid(
        "https://h.example/p", form, sdk.compute_signature("https://h.example:443/p", form)
    )
    assert ours.valid("https://h.example:443/p", form, signed_without_port)
