"""Settings errors as an operator reads them: one line per bad variable, named by the
environment variable they set (`PINGJIA_HTTP_PORT`), not by pydantic's field (`http_port`)."""

from __future__ import annotations

from pydantic import ValidationError

from pingjia.settings import env_names

# A value is echoed back unless its variable may hold a credential (a key, a token, a URL
# with a password in it): the message alone says what is wrong with those.
_SECRET_HINTS = ("secret", "token", "password", "key", "url", "sid")
_VALUE_WIDTH = 60


def _variable(model: str, location: tuple[int | str, ...]) -> str:
    if not location:
        return model
    name = str(location[0])
    names = env_names()
    if model == "Settings" and name in names:
        return names[name]
    return name if model == "Settings" else f"{model}.{name}"  # another part's settings block


def _shown(variable: str, value: object) -> str:
    if any(hint in variable.lower() for hint in _SECRET_HINTS) or not isinstance(value, str):
        return variable
    text = value if len(value) <= _VALUE_WIDTH else value[: _VALUE_WIDTH - 1] + "…"
    return f"{variable}={text!r}"


def describe(error: ValidationError) -> list[str]:
    """One line per fault: `PINGJIA_HTTP_PORT='abc': input should be a valid integer…`."""
    lines = []
    for fault in error.errors(include_url=False):
        message = str(fault["msg"]).removeprefix("Value error, ")
        variable = _variable(error.title, tuple(fault["loc"]))
        lines.append(f"{_shown(variable, fault.get('input'))}: {message}")
    return lines
