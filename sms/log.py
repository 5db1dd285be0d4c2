"""The SMS part's logger, and whether its INFO lines are written at all."""

from __future__ import annotations

import logging

import structlog

log = structlog.get_logger("pingjia.sms")


def logs_info() -> bool:
    """Whether pingjia.sms writes INFO lines: the per-reply and per-message lines are built
    only then (the stdlib level structlog's `filter_by_level` reads, pingjia/logs.py); a line
    dropped by its level still cost ~20 µs to build."""
    return logging.getLogger("pingjia.sms").isEnabledFor(logging.INFO)
