"""`pingjia sms reply`: a citizen's SMS reply, for people without a phone and a provider;
`pingjia sms templates`: our SMS template ids, their wordings and a provider's codes.

It posts to the running server's console-provider reply callback (PINGJIA_SMS_PROVIDER=console)
at PINGJIA_PUBLIC_URL, with `?key=PINGJIA_SMS_CALLBACK_KEY` as every callback carries it, then
waits for the server to handle the reply and prints what it did, read from the database.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid

import aiohttp
from sqlalchemy import select

from pingjia.case_report import print_case
from pingjia.composition import build_services
from pingjia.settings import Settings
from rating.cases.models import Case, Evaluation
from rating.errors import DomainError
from rating.policy.loader import load_profile
from sms.providers import registry
from sms.providers.console import REPLY_PATH
from sms.storage.models import SmsInbound, SmsMessage
from sms.template_codes import (
    check_template_codes,
    parse_override,
    template_codes,
    templates_in_use,
)

COMMANDS = ("sms",)
WAIT_S = 10.0  # for the server's background handling


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sms = commands.add_parser("sms", help="SMS tools")
    actions = sms.add_subparsers(dest="sms_command", required=True, metavar="ACTION")
    reply = actions.add_parser(
        "reply",
        help="send a citizen's reply to the running server (console SMS provider)",
        description=(
            f"POST a reply to `pingjia serve`'s {REPLY_PATH} (PINGJIA_SMS_PROVIDER=console) "
            "with ?key=PINGJIA_SMS_CALLBACK_KEY, the same as the server's, then print what the "
            "server did with it."
        ),
    )
    reply.add_argument("--from", dest="sender", required=True, help="the citizen's number")
    reply.add_argument("--body", required=True, help="the reply's text, e.g. '５ 态度太差'")
    reply.add_argument("--to", default="", help="the number written to (its 扩展码 names a case)")
    reply.add_argument("--sid", help="the reply's id (default: a new one; repeat one to retry)")
    reply.add_argument(
        "--api",
        help="the server's base URL (default: this machine's, PINGJIA_BIND and PINGJIA_HTTP_PORT)",
    )
    templates = actions.add_parser(
        "templates",
        help="list the SMS template ids and wordings (and a template provider's codes)",
        description=(
            "Print each SMS template id of the profile, one a line, the id first, then its "
            "wording: what a city registers with its provider. For a template provider "
            f"({', '.join(n for n, p in registry.PLUGINS.items() if p.sends_templates)}) the "
            "code mapped to it comes between them, and the wording is written as that "
            "provider registers it (its own placeholders, like ${name} or {1}). Exit 1 when a "
            "template in use has no code."
        ),
    )
    templates.add_argument(
        "--provider", help="the provider whose codes to show (default: PINGJIA_SMS_PROVIDER)"
    )


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.sms_command == "templates":
        return list_templates(settings, (args.provider or settings.sms_provider).strip().lower())
    if settings.sms_callback_key is None:
        print(
            "pingjia sms reply: set PINGJIA_SMS_CALLBACK_KEY (the same as the server's): "
            "callbacks without it are refused",
            file=sys.stderr,
        )
        return 2
    sid = args.sid or "SM" + uuid.uuid4().hex
    base = args.api or settings.local_api
    return asyncio.run(reply(settings, sid, args.sender, args.body, args.to, base=base))


def list_templates(settings: Settings, provider: str) -> int:
    """`pingjia sms templates`: one line per template (module docstring)."""
    profile = load_profile(settings.profile)
    try:
        plugin = registry.plugin(provider)
        codes = template_codes(profile, provider, parse_override(settings.sms_template_codes))
    except (ValueError, DomainError) as exc:
        print(f"pingjia sms templates: {exc}", file=sys.stderr)
        return 2
    shaped = plugin.sends_templates
    in_use = templates_in_use(profile)
    for name, text in sorted(profile.sms.templates.items()):
        if not shaped:
            print(f"{name}\t{text}")
            continue
        code = codes.get(name) or ("(no code)" if name in in_use else "(not in use)")
        print(f"{name}\t{code}\t{plugin.template_wording(text)}")
    if not shaped:
        return 0
    try:
        check_template_codes(profile, plugin, settings.sms_template_codes)
    except DomainError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


async def reply(settings: Settings, sid: str, sender: str, body: str, to: str, *, base: str) -> int:
    """POST the reply to the server at `base` (its own address, not the public one a proxy
    may answer for), then print what it did."""
    url = base.rstrip("/") + REPLY_PATH
    key = settings.sms_callback_key.get_secret_value() if settings.sms_callback_key else ""
    posted = {"id": sid, "from": sender, "to": to, "body": body}
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(url, params={"key": key}, json=posted) as response:
                answer = await response.text()
                status = response.status
    except aiohttp.ClientError as exc:
        print(f"pingjia sms reply: cannot reach {url}: {exc}", file=sys.stderr)
        print("  is `pingjia serve` running? (--api, PINGJIA_HTTP_PORT)", file=sys.stderr)
        return 1
    print(f"✉  {sender} → {url}: {body!r} (id {sid}): HTTP {status}")
    if status != 200:
        print(f"  {answer[:300]}", file=sys.stderr)
        return 1
    return await _print_outcome(settings, sid)


async def _print_outcome(settings: Settings, sid: str) -> int:
    services = await build_services(settings, migrate=False)
    try:
        deadline = time.monotonic() + WAIT_S
        while True:
            async with services.sessions() as session:
                row = await session.scalar(select(SmsInbound).where(SmsInbound.message_sid == sid))
            if row is not None and row.handled_at is not None:
                break
            if time.monotonic() > deadline:
                print(f"  not handled within {WAIT_S:.0f} s (the server logs say why)")
                return 1
            await asyncio.sleep(0.1)
        print(f"  handled: {row.outcome}")
        async with services.sessions() as session:  # our answer names the case it was about
            case_no = await session.scalar(
                select(Case.case_no)
                .join(Evaluation, Evaluation.case_id == Case.id)
                .join(SmsMessage, SmsMessage.evaluation_id == Evaluation.id)
                .where(SmsMessage.dedupe_key == f"reply:{sid}")
            )
        if case_no:
            await print_case(services, case_no)
    finally:
        await services.close()
    return 0
