"""A case's stored result as the running server's API gives it: what `pingjia call` prints
after a call. Nothing local is read, so the softphone may run from any folder or host; it
needs an API token of that server (any role reads evaluations and tickets)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiohttp

TOKEN_VARIABLE = "PINGJIA_TOKEN"
TIMEOUT_S = 10.0


class LookupFailed(Exception):
    """The server could not be asked, or refused; the message says what to do."""


async def _get(session: aiohttp.ClientSession, url: str, case_no: str) -> Any:
    try:
        async with session.get(url, params={"case_no": case_no}) as response:
            if response.status == 200:
                return await response.json()
            body = await response.text()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise LookupFailed(f"cannot reach the server's API at {url}: {exc or 'timed out'}") from exc
    if status == 401:
        raise LookupFailed(
            f"the server at {url} refused the token (401): give a token of this server with "
            f"--token or {TOKEN_VARIABLE} (`pingjia token create --role agent --name …`)"
        )
    raise LookupFailed(f"the server at {url} answered {status}: {body[:200]}")


def _when(text: str) -> str:
    return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M %z")


def _rating_line(case_no: str, evaluation: dict[str, Any]) -> str:
    rating = evaluation["rating"]
    if rating is None:
        return f"case {case_no}: {evaluation['status']} (no rating)"
    return (
        f"case {case_no}: {evaluation['status']}, {rating['label']} (level {rating['level']}) "
        f"via {rating['channel']}, tags {rating['tags'] or '-'}, voice {rating['voice_ref'] or '-'}"
    )


async def print_cases(
    api: str, token: str, case_nos: list[str], out: Callable[[str], None] = print
) -> None:
    """Each case's status, adopted rating and tickets, as `GET /api/v1/evaluations` and
    `GET /api/v1/tickets` answer; raises LookupFailed when the server cannot tell."""
    base = api.rstrip("/")
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
        for case_no in case_nos:
            found = (await _get(session, f"{base}/api/v1/evaluations", case_no))["items"]
            if not found:
                out(f"case {case_no}: the server at {base} has no such case (no rating stored)")
                continue
            out(_rating_line(case_no, found[0]))
            tickets = (await _get(session, f"{base}/api/v1/tickets", case_no))["items"]
            for ticket in tickets:
                deadlines = ", ".join(
                    f"{name} {_when(at)}" for name, at in ticket["deadlines"].items()
                )
                out(f"  ticket {ticket['ticket_no']} ({ticket['status']}), deadlines {deadlines}")


def no_token_hint() -> None:
    print(
        f"pingjia call: the stored result is read from the server's API: give a token with "
        f"--token or {TOKEN_VARIABLE} to see it",
        file=sys.stderr,
    )
