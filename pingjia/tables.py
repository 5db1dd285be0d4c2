"""Every part's tables on the one declarative base, collected here by name.

No module registers another's tables as a side effect: the composition root imports this, so
the whole schema is known (the tests' cleanup, comparing models with the migrations)."""

from __future__ import annotations

from sqlalchemy import MetaData

import ivr.models
import rating.access.models
import rating.cases.models
import rating.consent.models
import rating.links.models
import rating.outbox.models
import rating.stats.models
import rating.sweeps.models
import rating.tickets.models
import sms.storage.models
from rating.db.base import Base

MODULES = (
    rating.cases.models,
    rating.tickets.models,
    rating.outbox.models,
    rating.access.models,
    rating.consent.models,
    rating.links.models,
    rating.stats.models,
    rating.sweeps.models,
    ivr.models,
    sms.storage.models,
)


def metadata() -> MetaData:
    """The metadata of every table of every part."""
    return Base.metadata
