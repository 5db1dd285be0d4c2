"""Structured logs (structlog) that never carry a phone number in clear."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from rating.privacy import mask_text

CHATTY_LIBRARIES = ("alembic", "apscheduler")


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask(v) for v in value)
    return value


def mask_phones(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask every phone number in every field, the message included."""
    for key, value in list(event.items()):
        event[key] = _mask(value)
    return event


def configure(
    level: str = "INFO",
    fmt: str = "console",
    stream: TextIO | None = None,
    *,
    libraries: bool = False,
) -> None:
    """Route structlog and stdlib logging (aiohttp, alembic) through one masked renderer.

    Alembic's and APScheduler's INFO lines (the migration context at every start, every job
    run) are shown only with `libraries` (`pingjia -v`); their warnings always are."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=False),
        structlog.processors.format_exc_info,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=(stream or sys.stderr).isatty())
    )
    structlog.configure(
        # filter_by_level first: a line below the level is dropped before the timestamp and
        # the rest are computed (several per call on the FastAGI server).
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            mask_phones,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # APScheduler logs every job run and every add at INFO; our sweeps log what they did.
    for chatty in CHATTY_LIBRARIES:
        logging.getLogger(chatty).setLevel(
            root.level if libraries else max(logging.WARNING, root.level)
        )
