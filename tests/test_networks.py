"""The one parser of address lists (rating/networks.py) and every setting that reads one.

Bad inputs tried: empty entries (two commas, a trailing comma), blanks around and inside
entries, a block with host bits set (IPv4 and IPv6), IPv6 forms (bare, a block, in brackets),
garbage (a host name, an octet over 255, a prefix over 32, full-width digits, a NUL), and a
value of only commas. Each caller (the trusted proxies in the settings and at the HTTP edge,
each SMS provider's callback allowlist) names its own environment variable.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from pingjia.api.edge import TrustedProxies
from rating.networks import parse_networks
from sms.providers.aliyun import AliyunSmsSettings
from sms.providers.tencent import TencentSmsSettings
from sms.providers.twilio import TwilioSmsSettings
from tests.conftest import make_settings

ENV = "X_ALLOW"


def nets(*texts: str) -> tuple[Any, ...]:
    return tuple(ipaddress.ip_network(t) for t in texts)


def test_addresses_and_blocks_separated_by_commas_or_blanks() -> None:
    assert parse_networks("10.0.0.5, 10.0.0.0/8 ::1\t2001:db8::/32", ENV) == nets(
        "10.0.0.5/32", "10.0.0.0/8", "::1/128", "2001:db8::/32"
    )
    assert parse_networks(" 192.168.1.5 ,\t203.0.113.0/24 ", ENV) == nets(
        "192.168.1.5", "203.0.113.0/24"
    )


def test_nothing_is_an_empty_list() -> None:
    assert parse_networks("", ENV) == ()
    assert parse_networks("   ", ENV) == ()


def test_empty_entries_are_skipped() -> None:
    expected = nets("10.0.0.1", "10.0.0.2")
    assert parse_networks("10.0.0.1,,10.0.0.2", ENV) == expected
    assert parse_networks("10.0.0.1, ,10.0.0.2,", ENV) == expected
    assert parse_networks(",10.0.0.1,10.0.0.2", ENV) == expected


@pytest.mark.parametrize("text", [",", " , ", ",,,", "\t,\n"])
def test_only_commas_are_refused(text: str) -> None:
    # For an allowlist, no entry means everyone: a stray comma must not say that.
    with pytest.raises(ValueError, match=rf"^{ENV}: .* names no address; leave it empty"):
        parse_networks(text, ENV)


@pytest.mark.parametrize(
    ("entry", "network", "address"),
    [
        ("10.0.0.5/8", "10.0.0.0/8", "10.0.0.5"),
        ("192.168.1.1/24", "192.168.1.0/24", "192.168.1.1"),
        ("2001:db8::1/32", "2001:db8::/32", "2001:db8::1"),
    ],
)
def test_host_bits_set_are_refused_with_both_readings(
    entry: str, network: str, address: str
) -> None:
    with pytest.raises(ValueError) as refused:
        parse_networks(f"127.0.0.1, {entry}", ENV)
    said = str(refused.value)
    assert said.startswith(f"{ENV}: {entry!r} has host bits set")
    assert f"write {network} for the whole network, or {address} for the one address" in said


@pytest.mark.parametrize(
    ("text", "entry"),
    [
        ("10.0.0.1, proxy.local", "proxy.local"),
        ("10.0.0.300", "10.0.0.300"),
        ("10.0.0.0/33", "10.0.0.0/33"),
        ("10.0.0.0 /8", "/8"),  # a blank inside an entry splits it
        ("10.0.0. 1", "10.0.0."),
        ("[::1]", "[::1]"),
        ("::1/129", "::1/129"),
        ("１０.0.0.1", "１０.0.0.1"),
        ("10.0.0.1\x00", "10.0.0.1\x00"),
        ("010.0.0.1", "010.0.0.1"),
        ("10.0.0.1;10.0.0.2", "10.0.0.1;10.0.0.2"),
    ],
)
def test_garbage_is_refused_naming_the_entry(text: str, entry: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_networks(text, ENV)
    assert str(refused.value).startswith(f"{ENV}: {entry!r} is not an address or a network")


@given(st.lists(st.ip_addresses(), max_size=8), st.sampled_from([",", ", ", " ", " ,\t"]))
def test_what_is_written_is_what_is_read(addresses: list[Any], separator: str) -> None:
    text = separator.join(str(a) for a in addresses)
    assert parse_networks(text, ENV) == tuple(ipaddress.ip_network(a) for a in addresses)


@given(st.ip_addresses(), st.integers(min_value=0, max_value=128))
def test_a_block_parses_exactly_when_its_host_bits_are_clear(address: Any, prefix: int) -> None:
    prefix %= address.max_prefixlen + 1
    entry = f"{address}/{prefix}"
    clear = ipaddress.ip_network(entry, strict=False).network_address == address
    if clear:
        assert parse_networks(entry, ENV) == (ipaddress.ip_network(entry),)
    else:
        with pytest.raises(ValueError, match="has host bits set"):
            parse_networks(entry, ENV)


def test_the_trusted_proxies_setting_names_its_variable(tmp_path: Path) -> None:
    url = "sqlite+aiosqlite:///x.db"
    for bad, said in [("10.0.0.5/8", "has host bits set"), (",", "names no address")]:
        with pytest.raises(ValidationError, match=f"PINGJIA_TRUSTED_PROXIES: .*{said}"):
            make_settings(url, tmp_path, trusted_proxies=bad)
    with pytest.raises(ValueError, match="PINGJIA_TRUSTED_PROXIES: 'x' is not an address"):
        TrustedProxies.parse("10.0.0.1, x")
    assert TrustedProxies.parse("10.0.0.0/8 ::1").networks == nets("10.0.0.0/8", "::1")


@pytest.mark.parametrize(
    ("block", "env", "needed"),
    [
        (
            TwilioSmsSettings,
            "PINGJIA_TWILIO_CALLBACK_ALLOW",
            {"account_sid": "AC1", "auth_token": "t", "sender": "+15005550006"},
        ),
        (
            TencentSmsSettings,
            "PINGJIA_TENCENT_SMS_CALLBACK_ALLOW",
            {"secret_id": "id", "secret_key": "key", "app_id": "1400000000"},
        ),
        (
            AliyunSmsSettings,
            "PINGJIA_ALIYUN_SMS_CALLBACK_ALLOW",
            {"access_key_id": "id", "access_key_secret": "secret"},
        ),
    ],
)
def test_each_callback_allowlist_names_its_variable(
    block: Any, env: str, needed: dict[str, str]
) -> None:
    for bad, said in [
        ("203.0.113.7/24", "'203.0.113.7/24' has host bits set"),
        (" , ", "' , ' names no address"),
        ("203.0.113.0/24, example.com", "'example.com' is not an address"),
    ]:
        with pytest.raises(ValidationError) as refused:
            block(_env_file=None, callback_allow=bad, **needed)
        assert f"{env}: {said}" in str(refused.value)
    assert block(_env_file=None, callback_allow="203.0.113.0/24", **needed).callback_allow
