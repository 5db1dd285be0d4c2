"""Domain errors: each has a stable code the API puts in its JSON body, and parameters.

People read `message`: the Chinese text of rating/words.py's catalogue for the code, filled
with the parameters. The positional text is a note for developers and logs (`detail`); it is
shown only for a code the catalogue lacks (tests/test_words.py fails on such a code).
"""

from __future__ import annotations

from collections.abc import Mapping

from rating.words import refusal


class DomainError(Exception):
    """A rule of the domain said no; `code` and `params` are stable, `message` is for people."""

    code = "domain_error"
    status = 400

    def __init__(
        self,
        detail: str = "",
        *,
        code: str | None = None,
        params: Mapping[str, object] | None = None,
    ) -> None:
        if code is not None:
            self.code = code
        self.detail = detail
        self.params: dict[str, object] = dict(params or {})
        self.message = refusal(self.code, {"detail": detail, **self.params}, fallback=detail)
        super().__init__(self.message)


class NotFound(DomainError):
    code = "not_found"
    status = 404


class Conflict(DomainError):
    code = "conflict"
    status = 409


class InvalidInput(DomainError):
    code = "invalid_input"
    status = 422


class ProfileError(Exception):
    """A policy profile failed validation; the message names the file, the key and the fault."""
