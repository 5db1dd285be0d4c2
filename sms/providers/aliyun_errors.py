"""Aliyun SMS error codes, retryable or not.

SendSms answers HTTP 200 with `Code` `OK`, or with an `isv.*` / `isp.*` business code (the
account, signature, template, number or a limit); the API gateway answers 4xx/5xx with its own
codes (signature, AccessKey, throttling, service errors). A later try may get past Aliyun's own
failures and short-window limits; a request, account, signature, template or number Aliyun
refuses stays refused, and so do the daily limits (a retry within the day only adds to them).
A code we do not know gets a bounded retry rather than losing the message.
"""

from __future__ import annotations

from sms.providers import ProviderError

RETRYABLE_CODES = frozenset(
    {
        "isp.SYSTEM_ERROR",
        "isv.SYSTEM_ERROR",
        "isp.GATEWAY_ERROR",
        "isv.AMOUNT_NOT_ENOUGH",  # the city tops up the account; the outbox tries again
        "SignatureNonceUsed",  # a fresh nonce on the next try
        "InvalidTimeStamp.Expired",  # our clock or a slow network; the next try is signed anew
    }
)
RETRYABLE_PREFIXES = ("Throttling", "ServiceUnavailable", "InternalError", "RetryError")
PERMANENT_PREFIXES = (
    "isv.",
    "isp.",
    "Invalid",
    "Missing",
    "Forbidden",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "UnsupportedHTTPMethod",
    "NoPermission",
)
# isv.BUSINESS_LIMIT_CONTROL is every per-number limit at once; its message names which:
# 触发分钟级流控 / 触发小时级流控 pass with time, 触发天级流控 does not within the day.
BUSINESS_LIMIT = "isv.BUSINESS_LIMIT_CONTROL"
DAILY_WORDS = ("天级", "日级", "day")


def retryable(code: str, message: str = "", http_status: int | None = None) -> bool:
    """Whether a later try of a send Aliyun refused with `code` may succeed."""
    if http_status is not None and http_status >= 500:
        return True
    if code == BUSINESS_LIMIT:
        return not any(word in message for word in DAILY_WORDS)
    if code in RETRYABLE_CODES or code.startswith(RETRYABLE_PREFIXES):
        return True
    return not code.startswith(PERMANENT_PREFIXES)


def refusal(code: str, message: str, http_status: int | None = None) -> ProviderError:
    """Aliyun's error `code` as our ProviderError, its code first in the text."""
    return ProviderError(
        f"Aliyun SMS answered {code}: {message[:200]}",
        retryable=retryable(code, message, http_status),
    )
