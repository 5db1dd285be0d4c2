"""The SMS provider registry: PINGJIA_SMS_PROVIDER checked against it, each provider's
settings block read from its own variables, start-up stopped with one line naming them.

Bad inputs tried: an unknown provider name, a name in another case (accepted, lowered), a
provider with callbacks but no PINGJIA_SMS_CALLBACK_KEY, a callback key of 15 characters, keys
with `+`, `&`, a blank or Chinese characters (not URL-safe), an empty key (unset),
every required variable of every provider missing, a bad allowlist item, a settings block of
another provider handed to the composition.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from pingjia.composition import build_services
from pingjia.settings import Settings
from rating.errors import DomainError
from sms.providers.console import ConsoleSmsSettings
from sms.providers.registry import PLUGINS
from sms.setup import Context, build_provider, choose_provider, env_names
from tests.sms_support import twilio_settings

ROOT = Path(__file__).resolve().parent.parent
KEY = "registry-callback-key"


def context(key: str | None = KEY) -> Context:
    return Context("https://pj.example.cn", "台山12345", lambda: datetime.now(UTC), 4, key)


@pytest.fixture
def bare_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No provider variable set, and no .env file to read one from."""
    monkeypatch.chdir(tmp_path)
    for plugin in PLUGINS.values():
        for name in env_names(plugin.settings).values():
            monkeypatch.delenv(name, raising=False)


def test_the_registry_names_each_provider_module_once() -> None:
    assert list(PLUGINS) == ["console", "twilio", "tencent", "aliyun", "smpp"]
    for name, plugin in PLUGINS.items():
        assert plugin.name == name and issubclass(plugin.settings, BaseSettings)


def test_an_unknown_provider_stops_start_up_in_one_line() -> None:
    with pytest.raises(DomainError) as stopped:
        choose_provider("aliyunn", KEY)
    assert stopped.value.detail == (
        "PINGJIA_SMS_PROVIDER='aliyunn' is no SMS provider; one of: console, twilio, tencent, "
        "aliyun, smpp"
    )
    assert choose_provider(" Console ", None).plugin.name == "console"


async def test_a_bad_provider_stops_the_services_before_the_database(tmp_path: Path) -> None:
    database = tmp_path / "never.db"
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{database}",
        data_dir=tmp_path,
        sms_provider="tencent",
    )
    with pytest.raises(DomainError, match="tencent needs PINGJIA_SMS_CALLBACK_KEY"):
        await build_services(settings)
    assert not database.exists()


def test_a_short_callback_key_is_refused_and_an_empty_one_is_unset() -> None:
    with pytest.raises(ValidationError, match="sms_callback_key"):
        Settings(_env_file=None, sms_callback_key="x" * 15)  # type: ignore[call-arg]
    for bad in ("0123456789abcdef+", "0123456789abcdef&x=1", "0123456789 abcdef", "密钥" * 8):
        with pytest.raises(ValidationError, match=r"letters, digits and - \. _ ~ only"):
            Settings(_env_file=None, sms_callback_key=bad)  # type: ignore[call-arg]
    assert Settings(_env_file=None, sms_callback_key=" ").sms_callback_key is None  # type: ignore[call-arg]
    key = Settings(_env_file=None, sms_callback_key="k" * 16).sms_callback_key  # type: ignore[call-arg]
    assert key is not None and key.get_secret_value() == "k" * 16


@pytest.mark.usefixtures("bare_environment")
@pytest.mark.parametrize(
    ("name", "missing"),
    [
        ("twilio", ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM"]),
        ("tencent", ["TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY"]),
        ("smpp", ["PINGJIA_SMPP_HOST", "PINGJIA_SMPP_SYSTEM_ID", "PINGJIA_SMPP_SOURCE_ADDR"]),
    ],
)
def test_missing_settings_stop_start_up_naming_the_variables(name: str, missing: list[str]) -> None:
    with pytest.raises(DomainError) as stopped:
        build_provider(name, context())
    line = stopped.value.detail
    assert "\n" not in line and line.startswith(f"PINGJIA_SMS_PROVIDER={name} needs")
    for variable in missing:
        assert variable in line


def test_a_provider_with_callbacks_needs_the_key() -> None:
    block = twilio_settings("http://127.0.0.1:9")
    with pytest.raises(DomainError, match="twilio needs PINGJIA_SMS_CALLBACK_KEY"):
        build_provider("twilio", context(None), block=block)
    with pytest.raises(DomainError, match="tencent needs PINGJIA_SMS_CALLBACK_KEY"):
        build_provider("tencent", context(None))


@pytest.mark.usefixtures("bare_environment")
async def test_console_and_smpp_start_without_a_key() -> None:
    chosen = build_provider("console", context(None))
    assert chosen.provider.name == "console" and chosen.guard.key is None
    await chosen.provider.close()


def test_a_bad_allowlist_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINGJIA_TWILIO_CALLBACK_ALLOW", "10.0.0.0/8, twilio.com")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC1")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "t")
    monkeypatch.setenv("TWILIO_FROM", "+15005550006")
    with pytest.raises(DomainError) as stopped:
        build_provider("twilio", context())
    assert "PINGJIA_TWILIO_CALLBACK_ALLOW: 'twilio.com' is not an address" in stopped.value.detail


def test_another_providers_block_is_refused() -> None:
    block = ConsoleSmsSettings(_env_file=None)  # type: ignore[call-arg]
    with pytest.raises(DomainError, match="ConsoleSmsSettings, not its TwilioSmsSettings"):
        build_provider("twilio", context(), block=block)
    with pytest.raises(DomainError, match="is no SMS provider"):
        build_provider("nope", context())


def test_the_readme_documents_every_providers_settings_and_callbacks() -> None:
    readme = (ROOT / "README.md").read_text()
    for plugin in PLUGINS.values():
        assert f"**`{plugin.name}`**" in readme
        for variable in env_names(plugin.settings).values():
            assert f"`{variable}`" in readme, f"{variable} ({plugin.name}) is not in the README"
        for path in plugin.callback_paths:
            assert f"{path}?key=" in readme, f"{path} ({plugin.name}) is not in the README"
    lines = {line.split(" | ")[0]: line for line in readme.splitlines() if line.startswith("| `")}
    chooser, key = lines["| `PINGJIA_SMS_PROVIDER`"], lines["| `PINGJIA_SMS_CALLBACK_KEY`"]
    for plugin in PLUGINS.values():
        assert f"`{plugin.name}`" in chooser, f"{plugin.name} is not among the providers"
        if plugin.callback_paths:
            assert f"`{plugin.name}`" in key, f"{plugin.name} needs the key: not said"
        assert f"| `{plugin.name}` |" in readme, f"{plugin.name} is not in the choosing table"
