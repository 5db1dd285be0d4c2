"""Rating records in the national fields (GB/T 39046-2020 table 9), coded as the profile says."""

from __future__ import annotations

from typing import Any

from rating.cases.models import Case, Rating
from rating.policy.profile import Profile


def rating_record(
    profile: Profile, case: Case, rating: Rating, phone: str | None
) -> dict[str, Any]:
    """The payload posted to the central store for one adopted rating.

    `phone` is the clear number; it goes out only when the profile allows it, masked otherwise.
    """
    store = profile.central_store
    rater = phone if (store.send_phone_in_clear and phone) else case.phone_masked
    local_time = rating.rated_at.astimezone(profile.tz)
    return {
        "case_no": case.case_no,  # 办件编号
        "channel": store.channel_codes[rating.channel],  # type: ignore[index]  # 评价渠道
        "rater": rater,  # 评价人
        "rated_at": local_time.strftime("%Y%m%dT%H%M%S"),  # 评价时间
        "attempt": rating.attempt,  # 评价次数
        "satisfaction": profile.label(rating.level),  # 满意度
        "satisfaction_code": store.level_codes[rating.level],  # 满意度代码
        "comment": rating.reason or "",  # 文字评价
        "tags": [tag.text for code in rating.tags if (tag := profile.tag(code)) is not None],
        "region_code": store.region_code,  # 行政区划
        "agency": case.agency,
        "agent_id": case.agent_id,
    }
