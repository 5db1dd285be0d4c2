"""Domain errors: each has a stable code the API puts in its JSON body."""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain said no; `code` is stable, the message is for people."""

    code = "domain_error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


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
