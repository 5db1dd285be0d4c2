"""What the running profile adds to the OpenAPI document: the rules the domain applies from it.

A rating's tags must be among those its level offers, and some levels (台山: 4 and 5) need a
tag or a written reason (rating/policy/rules.py `check_rating`). The models cannot say that,
since it depends on the profile the server runs; the document is built at start-up, so it says
it here, as one branch per level.
"""

from __future__ import annotations

from typing import Any

from pingjia.api.routing import NON_BLANK
from rating.policy.levels import Level
from rating.policy.profile import Profile


def rating_rules(profile: Profile) -> dict[str, Any]:
    """RatingIn's rules in `profile`: per level, the tags it offers and whether it needs one
    (or a reason); exactly one branch matches a valid level."""
    branches: list[dict[str, Any]] = []
    for level in Level:
        codes = [tag.code for tag in profile.tags_for(level)]
        tags: dict[str, Any] = {"items": {"enum": codes}} if codes else {"maxItems": 0}
        branch: dict[str, Any] = {"properties": {"level": {"const": int(level)}, "tags": tags}}
        if profile.reason_required(level):
            branch["anyOf"] = [
                {"required": ["tags"], "properties": {"tags": {"minItems": 1}}},
                {
                    "required": ["reason"],
                    "properties": {"reason": {"type": "string", "pattern": NON_BLANK}},
                },
            ]
        branches.append(branch)
    return {"oneOf": branches}


def add_profile_rules(document: dict[str, Any], profile: Profile) -> None:
    """Narrow the document's request schemas to what `profile` accepts."""
    schema = document["components"]["schemas"]["RatingIn"]
    schema.update(rating_rules(profile))
    schema["description"] = (
        f"{schema.get('description', '')} Tags by level, and the levels that need a tag or a "
        f"reason, are those of the profile this server runs ({profile.name})."
    ).strip()
