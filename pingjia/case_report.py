"""What the console tools print about a case after acting on it: its status, the adopted
rating and its tickets, read from the database the settings name."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

from pingjia.composition import Services
from rating.errors import NotFound
from rating.tickets.models import Ticket
from rating.tickets.repository import TicketRepository


async def print_case(services: Services, case_no: str) -> None:
    try:
        evaluation = await services.ratings.evaluation(case_no)
    except NotFound as exc:  # the call never reached the write, or another database
        print(f"case {case_no}: {exc.message} in {_where(services)}")
        return
    except DBAPIError as exc:  # an empty file, a database the server does not use
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc)
        print(
            f"case {case_no}: not read from {_where(services)} ({reason}); this tool "
            "reads the database PINGJIA_DATABASE_URL names: give it the server's"
        )
        return
    adopted = next((r for r in evaluation.ratings if r.adopted), None)
    if adopted is None:
        print(f"case {case_no}: {evaluation.status} (no rating)")
        return
    label = services.profile.label(adopted.level)
    print(
        f"case {case_no}: {evaluation.status}, {label} (level {adopted.level}) via "
        f"{adopted.channel}, tags {adopted.tags or '-'}, voice {adopted.voice_ref or '-'}"
    )
    async with services.sessions() as session:
        tickets: list[Ticket] = list(
            await TicketRepository(session).tickets_for_case(evaluation.case_id)
        )
    for ticket in tickets:
        print(f"  ticket {ticket.ticket_no} ({ticket.status}), deadlines {ticket.deadlines}")


def _where(services: Services) -> str:
    return services.engine.url.render_as_string(hide_password=True)
