"""What handling a reply produces, shared by the pipeline's stages: its result, our answer."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class InboundResult:
    """What a reply did: `outcome` is a short word for logs, tests and the inbound table."""

    outcome: str
    case_no: str | None = None
    ticket_no: str | None = None


@dataclass(frozen=True)
class Answer:
    """Our answer to a reply, sent once per `key`."""

    kind: str
    key: str
    params: dict[str, str] = field(default_factory=dict)
    evaluation_id: int | None = None


# A decision on one reply: its result and our answer (None: no answer).
Decision = tuple[InboundResult, Answer | None]
