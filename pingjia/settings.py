"""Settings from the environment (and a `.env` file), as SPEC.md section 4 fixes them."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rating.networks import parse_networks

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///pingjia.db"
URL_SAFE = string.ascii_letters + string.digits + "-._~"  # unreserved in a URL (RFC 3986)


class Settings(BaseSettings):
    """Every setting pingjia reads; the README's table is written from these fields."""

    model_config = SettingsConfigDict(
        env_prefix="PINGJIA_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
        env_ignore_empty=True,  # `PINGJIA_REDIS_URL=` (compose files, .env templates): unset
    )

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL: sqlite+aiosqlite:///FILE or postgresql+asyncpg://…",
    )
    db_pool_size: int = Field(
        20, ge=1, le=500, description="database connections per process (PostgreSQL)"
    )
    redis_url: str | None = Field(
        None, description="redis://host:6379/0; unset: in-process state, one process only"
    )
    profile: str = Field("taishan", description="policy profile: taishan, sanmenxia or a path")
    public_url: str = Field(
        "http://127.0.0.1:8080", description="base of rating links and webhook signatures"
    )
    sms_provider: str = Field(
        "console",
        description="SMS provider, a name in sms/providers/registry.py (checked when the "
        "services are built); each reads its own settings block (README, SMS providers)",
    )
    sms_callback_key: SecretStr | None = Field(
        None,
        min_length=16,
        description="secret every SMS callback URL carries as ?key= (at least 16 characters); "
        "needed by providers that post callbacks",
    )
    sms_replies: Literal["inline", "queued"] = Field(
        "inline",
        description="inline: the process whose webhook stored a reply handles it; queued: the "
        "webhook only stores, the sms_inbox sweep of a scheduler process handles it",
    )
    sweeps: bool = Field(True, description="whether `pingjia serve` runs the scheduler's sweeps")
    sweep_every_s: float | None = Field(
        None,
        gt=0,
        description="when set, every interval sweep runs this often (seconds); unset: each its own",
    )
    lease_s: float | None = Field(
        None,
        gt=0,
        description="when set, how long a node's claim on outbox items, ticket transfers and "
        "default ratings holds before another node takes them over (seconds); unset: each its own",
    )
    sms_concurrency: int = Field(
        128, ge=1, le=1000, description="SMS sends in flight at once, per process"
    )
    sms_template_codes: str = Field(
        "",
        description='JSON object {"template id": "approved code"} overriding the profile\'s '
        "[sms.template_codes.<provider>] (Aliyun, Tencent)",
    )
    central_store_url: str | None = Field(None, description="central (provincial) rating store")
    ticket_system_url: str | None = Field(None, description="the 12345 ticket system")
    ami_url: str | None = Field(None, description="tcp://user:secret@host:5038")
    outbound_dial: str = Field(
        "PJSIP/{number}@trunk",
        description="Originate channel of outbound rating calls, and the citizen leg of "
        "call-backs (PINGJIA_DIAL); {number} is the citizen's number as stored (E.164 with +)",
    )
    agent_dial: str = Field(
        "PJSIP/agent{extension}",
        description="Originate channel that rings an agent for a call-back; {extension} is "
        "the agent's extension",
    )
    recordings_dir: str = Field(
        "/var/spool/asterisk/monitor/pingjia",
        description="where Asterisk writes callers' voice messages (a path on the Asterisk host)",
    )
    recordings_mount: Path | None = Field(
        None,
        description="where this host mounts the recordings folder shared with Asterisk, to play "
        "voice messages in the console (default: PINGJIA_RECORDINGS_DIR itself)",
    )
    http_port: int = Field(8080, ge=0, le=65535, description="HTTP port")
    agi_port: int = Field(4573, ge=0, le=65535, description="FastAGI port")
    bind: str = Field("127.0.0.1", description="address the servers bind to")
    secret_key: str | None = Field(
        None, description="key for phone encryption and hashing; generated into data_dir if unset"
    )
    data_dir: Path = Field(Path("pingjia-data"), description="where generated keys and files go")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING, ERROR")
    log_format: Literal["console", "json"] = Field("console", description="log line format")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="largest accepted request body")
    trusted_proxies: str = Field(
        "",
        description="addresses or CIDR blocks of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed (comma-separated); empty: none",
    )

    @property
    def local_host(self) -> str:
        """This machine's servers as the CLI tools reach them (an any-address bind: loopback)."""
        return "127.0.0.1" if self.bind in ("0.0.0.0", "::", "") else self.bind

    @property
    def local_api(self) -> str:
        """The base URL of this machine's `pingjia serve` (PINGJIA_BIND, PINGJIA_HTTP_PORT)."""
        host = self.local_host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.http_port}"

    @field_validator("sms_callback_key", mode="before")
    @classmethod
    def _callback_key(cls, value: object) -> object:
        # PINGJIA_SMS_CALLBACK_KEY= (empty, as compose files pass an unset one) means unset.
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, str) and value.strip(URL_SAFE):
            raise ValueError(
                "PINGJIA_SMS_CALLBACK_KEY: use letters, digits and - . _ ~ only (it goes into "
                "callback URLs as it is)"
            )
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: str) -> str:
        parse_networks(value, "PINGJIA_TRUSTED_PROXIES")  # a ValueError names the entry
        return value

    @field_validator("recordings_dir")
    @classmethod
    def _absolute(cls, value: str) -> str:
        # RECORD FILE with a relative path lands in Asterisk's own sounds dir, not here.
        if not value.startswith("/") or any(c.isspace() for c in value):
            raise ValueError(f"must be an absolute path without blanks, got {value!r}")
        return value.rstrip("/") or "/"

    @field_validator("ami_url")
    @classmethod
    def _ami_url(cls, value: str | None) -> str | None:
        if value:  # a malformed URL stops start-up with the expected form
            check_ami_url(value)
        return value or None


def check_ami_url(url: str) -> None:
    """The form PINGJIA_AMI_URL must have; a neutral parse, so the settings know no AMI type
    (the composition root parses it into the IVR part's own `AmiUrl`)."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError as exc:
        raise ValueError(f"PINGJIA_AMI_URL has a bad port: {exc}") from None
    if parts.scheme != "tcp" or not parts.hostname or not parts.username:
        raise ValueError(
            "PINGJIA_AMI_URL must look like tcp://user:secret@host:5038 "
            f"(got scheme {parts.scheme!r}, host {parts.hostname!r})"
        )


def env_names() -> dict[str, str]:
    """Map each setting to the environment variable that sets it."""
    names: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names[name] = str(alias.choices[0])
        else:
            names[name] = f"PINGJIA_{name.upper()}"
    return names
