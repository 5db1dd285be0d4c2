"""The compose file, the Dockerfile and the Asterisk samples agree with each other, with
Settings, and with the prompts the flows play: Asterisk gets every prompt and a core beep, the
recordings folder exists before the first call, RTP ports match rtp.conf (Docker does not run
here, so they are checked by reading)."""

from __future__ import annotations

import ipaddress
import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from ivr.flows.base import PROMPT_ROOT
from pingjia.ivr_prompts import required_prompts
from pingjia.settings import Settings, env_names
from prompts.build import CORE, TONES
from prompts.catalog import AUDIO
from rating.policy.loader import builtin_profiles, load_profile

ROOT = Path(__file__).resolve().parent.parent
ASTERISK_DIR = ROOT / "deploy" / "asterisk"
SOUNDS = "/var/lib/asterisk/sounds"  # the sounds folder of the Asterisk image
# The files Asterisk must find for every prompt: A-law and μ-law for the trunks' codecs
# (no transcoding per call), WAV for anything else.
PROMPT_FORMATS = ("wav", "ulaw", "alaw")
HTTP_PORT = int(Settings.model_fields["http_port"].default)
AGI_PORT = int(Settings.model_fields["agi_port"].default)

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def _defaults(value: str) -> str:
    """Resolve compose interpolation as if no variable were set (required ones → "REQUIRED")."""

    def one(match: re.Match[str]) -> str:
        op, arg = match.group(2), match.group(3)
        if op in (":-", "-"):
            return arg
        if op in (":?", "?"):
            return "REQUIRED"
        return ""

    return _INTERPOLATION.sub(one, value.replace("$$", "\0")).replace("\0", "$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = compose["services"]
    return found


@pytest.fixture(scope="module")
def pingjia_env(services: dict[str, Any]) -> dict[str, str]:
    env = services["pingjia"].get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(key): str(value) for key, value in env.items()}


def _published(ports: list[Any]) -> dict[int, int]:
    """Container port → host port, from short ("8080:8080", "ip:h:c/tcp") or long syntax."""
    mapping: dict[int, int] = {}
    for entry in ports:
        if isinstance(entry, dict):
            target = int(entry["target"])
            mapping[target] = int(entry.get("published") or target)
            continue
        spec = str(entry).split("/")[0]
        parts = spec.split(":")
        if "-" in parts[-1]:
            continue  # a range (RTP): not a single service port
        target = int(parts[-1])
        mapping[target] = int(parts[-2]) if len(parts) > 1 else target
    return mapping


def _conf(path: Path) -> dict[str, list[tuple[str, str]]]:
    """An Asterisk .conf file: section → [(key, value)], keys may repeat; `;` starts a comment."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = re.split(r"(?<!\\);", raw, maxsplit=1)[0].strip()
        if not line:
            continue
        header = re.match(r"\[([^\]]+)\]", line)
        if header:
            current = sections.setdefault(header.group(1), [])
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"{path.name}: cannot read line {raw!r}"
        current.append((key.strip(), value.lstrip(">").strip()))
    return sections


def _dialplan_lines() -> list[str]:
    text = (ASTERISK_DIR / "extensions.conf").read_text(encoding="utf-8")
    lines = (re.split(r"(?<!\\);", raw, maxsplit=1)[0].strip() for raw in text.splitlines())
    return [line for line in lines if line]


def _app_args(line: str, app: str) -> list[str] | None:
    """The top-level arguments of `app(...)` on a dialplan line, or None."""
    match = re.search(rf"\b{app}\(", line)
    if not match:
        return None
    args, depth, current = [], 0, ""
    for char in line[match.end() :]:
        if char == ")" and depth == 0:
            break
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            args.append(current)
            current = ""
        else:
            current += char
    args.append(current)
    return args


def _mounts(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read_only) of a service's volumes, short or long syntax."""
    found = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            found.append(
                (str(volume["source"]), str(volume["target"]), bool(volume.get("read_only")))
            )
            continue
        source, target, *mode = str(volume).split(":")
        found.append((source, target, "ro" in (mode[0].split(",") if mode else [])))
    return found


def _bind_source(source: str) -> Path:
    assert source.startswith("./"), f"{source} is not a path in the repository"
    return (ROOT / source).resolve()


def _depends_on_completion(service: dict[str, Any], name: str) -> bool:
    depends = service.get("depends_on", {})
    return isinstance(depends, dict) and (
        depends.get(name, {}).get("condition") == "service_completed_successfully"
    )


def test_the_four_services_exist(services: dict[str, Any]) -> None:
    assert {"postgres", "redis", "pingjia", "asterisk"} <= set(services)


def test_pingjia_publishes_the_default_ports(services: dict[str, Any]) -> None:
    published = _published(services["pingjia"]["ports"])
    assert published.get(HTTP_PORT) == HTTP_PORT == 8080
    assert published.get(AGI_PORT) == AGI_PORT == 4573


def test_pingjia_environment_uses_only_known_settings(pingjia_env: dict[str, str]) -> None:
    known = set(env_names().values())
    unknown = sorted(
        name for name in pingjia_env if name.startswith("PINGJIA_") and name not in known
    )
    assert not unknown, f"docker-compose.yml sets variables Settings does not know: {unknown}"
    assert "PINGJIA_SECRET_KEY" in pingjia_env
    assert _defaults(pingjia_env["PINGJIA_BIND"]) == "0.0.0.0"
    assert _defaults(pingjia_env["PINGJIA_PROFILE"]) == Settings.model_fields["profile"].default


def test_database_is_the_postgres_service_through_asyncpg(
    services: dict[str, Any], pingjia_env: dict[str, str]
) -> None:
    url = urlsplit(_defaults(pingjia_env["PINGJIA_DATABASE_URL"]))
    assert url.scheme == "postgresql+asyncpg"
    pg = services["postgres"]["environment"]
    assert url.hostname == "postgres"
    assert (url.username, url.password, url.path.lstrip("/")) == (
        pg["POSTGRES_USER"],
        pg["POSTGRES_PASSWORD"],
        pg["POSTGRES_DB"],
    )
    assert urlsplit(_defaults(pingjia_env["PINGJIA_REDIS_URL"])).hostname == "redis"


def test_pingjia_waits_for_healthy_postgres_and_redis(services: dict[str, Any]) -> None:
    depends = services["pingjia"]["depends_on"]
    assert isinstance(depends, dict), "depends_on needs the long form to carry a condition"
    for name in ("postgres", "redis"):
        assert depends[name]["condition"] == "service_healthy"
        assert "healthcheck" in services[name], f"{name} needs a healthcheck for service_healthy"
    assert "pg_isready" in str(services["postgres"]["healthcheck"]["test"])
    assert "redis-cli" in str(services["redis"]["healthcheck"]["test"])


def test_data_dir_is_a_volume(services: dict[str, Any], pingjia_env: dict[str, str]) -> None:
    data_dir = pingjia_env["PINGJIA_DATA_DIR"]
    targets = [str(v).split(":")[1] for v in services["pingjia"].get("volumes", [])]
    assert data_dir in targets


def test_asterisk_config_mounts_exist(services: dict[str, Any]) -> None:
    mounted = []
    for volume in services["asterisk"]["volumes"]:
        source, target = str(volume).split(":")[:2]
        if not target.startswith("/etc/asterisk/"):
            continue
        path = (ROOT / source).resolve()
        assert path.parent == ASTERISK_DIR, f"{source} is not under deploy/asterisk"
        assert path.is_file(), f"{source} is mounted into asterisk but does not exist"
        assert Path(target).name == path.name
        mounted.append(path.name)
    assert {"extensions.conf", "manager.conf", "pjsip.conf", "queues.conf", "rtp.conf"} <= set(
        mounted
    )


def test_asterisk_has_every_prompt_the_flows_play(services: dict[str, Any]) -> None:
    """The flows play pingjia/<language>/<id>; the mount puts prompts/audio there."""
    target = f"{SOUNDS}/{PROMPT_ROOT}"
    sources = [
        (_bind_source(src), ro) for src, dst, ro in _mounts(services["asterisk"]) if dst == target
    ]
    assert sources, f"nothing is mounted on {target}: every call would end at the greeting"
    ((source, read_only),) = sources
    assert source == AUDIO.resolve() and read_only
    for name in builtin_profiles():
        profile = load_profile(name)
        for prompt_id in required_prompts(profile):
            for suffix in PROMPT_FORMATS:
                path = source / profile.prompt_language / f"{prompt_id}.{suffix}"
                assert path.is_file(), f"{path} missing: run `pingjia prompts build`"


def test_asterisk_has_a_core_beep(services: dict[str, Any]) -> None:
    """RECORD FILE ... BEEP plays the core sound `beep`; andrius/asterisk has no core sounds."""
    mounted = {
        dst: _bind_source(src) for src, dst, _ in _mounts(services["asterisk"]) if src[0] in "./"
    }
    for tone in TONES:
        for suffix in PROMPT_FORMATS:
            target = f"{SOUNDS}/{tone}.{suffix}"
            assert mounted.get(target) == (AUDIO / CORE / f"{tone}.{suffix}").resolve(), target
    for target, source in mounted.items():
        # Docker makes a missing bind source into an empty folder, silently.
        if target.startswith(f"{SOUNDS}/"):
            assert source.exists(), f"{source} (mounted on {target}) does not exist"


def test_the_recordings_folder_exists_before_the_first_call(
    compose: dict[str, Any], services: dict[str, Any], pingjia_env: dict[str, str]
) -> None:
    recordings = Path(
        pingjia_env.get("PINGJIA_RECORDINGS_DIR") or Settings.model_fields["recordings_dir"].default
    )
    shared = [
        (src, dst)
        for src, dst, _ in _mounts(services["asterisk"])
        if src in compose["volumes"] and recordings.is_relative_to(dst)
    ]
    assert shared, f"no named volume of asterisk holds {recordings}"
    ((volume, target),) = shared
    assert (volume, target) in [(s, d) for s, d, _ in _mounts(services["pingjia"])], (
        "pingjia needs the recordings at the same path as Asterisk (voice_ref names it)"
    )
    makers = [
        name
        for name, service in services.items()
        if (volume, target, False) in _mounts(service) and "command" in service
    ]
    assert len(makers) == 1, f"one service must create {recordings} in {volume}: {makers}"
    (maker,) = makers
    init = services[maker]
    assert init["image"] == services["asterisk"]["image"]  # its `asterisk` user is Asterisk's
    assert init.get("user") == "root" and init.get("restart") == "no"
    script = " ".join(init["entrypoint"] + list(init["command"]))
    assert f"mkdir -p {recordings}" in script
    chown = re.search(r"chown (?:-R )?asterisk:asterisk ([^&;]+)", script)
    assert chown and str(recordings) in chown.group(1).split()
    for name in ("asterisk", "pingjia"):
        assert _depends_on_completion(services[name], maker), f"{name} must wait for {maker}"


def test_rtp_range_matches_the_published_ports(services: dict[str, Any]) -> None:
    general = dict(_conf(ASTERISK_DIR / "rtp.conf")["general"])
    start, end = int(general["rtpstart"]), int(general["rtpend"])
    ranges = []
    for entry in services["asterisk"]["ports"]:
        spec, _, protocol = str(entry).partition("/")
        if "-" in spec:
            assert protocol == "udp", f"{entry}: RTP is UDP"
            host, container = spec.split(":")[-2:]
            ranges.append((host, container))
    assert ranges == [(f"{start}-{end}", f"{start}-{end}")], ranges
    assert start % 2 == 0 and 0 < end - start < 1000, "a small range that starts even (RTP)"


def test_dialplan_rates_after_the_agent_hangs_up() -> None:
    lines = _dialplan_lines()
    rating = [
        line for line in lines if re.search(r"AGI\(agi://pingjia:\d+/rating\?[^,]*\bcase=", line)
    ]
    assert rating, "no AGI(agi://pingjia:PORT/rating?case=...) in extensions.conf"
    keeps_caller = False
    for line in lines:
        queue, dial = _app_args(line, "Queue"), _app_args(line, "Dial")
        if queue and len(queue) > 1 and "c" in queue[1]:
            keeps_caller = True
        if dial and len(dial) > 2 and "g" in dial[2]:
            keeps_caller = True
    assert keeps_caller, "need Queue(...,c) or Dial(...,,g) so the caller survives the agent"


def test_dialplan_agi_urls_use_the_service_and_default_port(services: dict[str, Any]) -> None:
    urls = re.findall(r"h?agi://([^/:,)]+)(?::(\d+))?/", "\n".join(_dialplan_lines()))
    assert urls
    for host, port in urls:
        assert host in services
        assert int(port or 4573) == AGI_PORT
    assert any("/survey?case=" in line for line in _dialplan_lines())


def test_ami_matches_the_compose_url(
    compose: dict[str, Any], services: dict[str, Any], pingjia_env: dict[str, str]
) -> None:
    url = urlsplit(_defaults(pingjia_env["PINGJIA_AMI_URL"]))
    assert (url.scheme, url.hostname, url.port) == ("tcp", "asterisk", 5038)
    manager = _conf(ASTERISK_DIR / "manager.conf")
    general = dict(manager["general"])
    assert general["enabled"] == "yes"
    assert int(general["port"]) == url.port
    user = manager[str(url.username)]
    assert dict(user)["secret"] == url.password
    assert not any(str(p).split(":")[-1].startswith("5038") for p in services["asterisk"]["ports"])
    subnets = [
        ipaddress.IPv4Network(pool["subnet"])
        for network in compose["networks"].values()
        for pool in network["ipam"]["config"]
    ]
    permits = [ipaddress.IPv4Network(v, strict=False) for k, v in user if k == "permit"]
    assert permits, "manager.conf must limit AMI logins with permit"
    for permit in permits:
        assert any(permit.subnet_of(net) for net in subnets), f"{permit} is outside the network"


def test_pjsip_uses_rfc4733() -> None:
    pjsip = _conf(ASTERISK_DIR / "pjsip.conf")
    modes = [v for entries in pjsip.values() for k, v in entries if k == "dtmf_mode"]
    assert modes and set(modes) == {"rfc4733"}


def test_dockerfile_exposes_both_ports() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    exposed = {
        int(port.split("/")[0])
        for line in text.splitlines()
        if line.strip().upper().startswith("EXPOSE ")
        for port in line.split()[1:]
    }
    assert {HTTP_PORT, AGI_PORT} <= exposed
    assert "PINGJIA_BIND=0.0.0.0" in text
    assert "/healthz" in text


def _dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether a .dockerignore pattern drops `path` or a folder above it (Docker's rules,
    approximated on the safe side: fnmatch's `*` also crosses `/`)."""
    parts = path.split("/")
    for pattern in patterns:
        if pattern.startswith("**/"):
            if any(fnmatch(part, pattern[3:]) for part in parts):
                return True
        elif any(fnmatch("/".join(parts[:n]), pattern) for n in range(1, len(parts) + 1)):
            return True
    return False


def test_the_image_installs_the_wheel_of_the_whole_context() -> None:
    """No hand-kept list of folders: the wheel is built from the context, and .dockerignore
    keeps nothing out that the wheel needs."""
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text("utf-8").splitlines()]
    copies = [line.split()[1:] for line in lines if line.upper().startswith("COPY ")]
    assert copies == [[".", "."]], f"the Dockerfile copies by hand: {copies}"
    assert any(line.startswith("RUN pip wheel") and line.endswith(" .") for line in lines)
    assert any("pip install /wheels/" in line for line in lines)
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert {".git", ".venv"} <= set(patterns)
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    packages = {p.rstrip("*") for p in config["tool"]["setuptools"]["packages"]["find"]["include"]}
    needed = ["pyproject.toml", config["project"]["readme"]] + [
        path.relative_to(ROOT).as_posix()
        for top in sorted(packages)
        for path in (ROOT / top).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    ]
    dropped = [path for path in needed if _dockerignored(path, patterns)]
    assert not dropped, f".dockerignore keeps these out of the wheel: {dropped[:10]}"
