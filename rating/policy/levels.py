"""The five rating levels, numbered as GB/T 39046 codes them (1 = 非常满意 … 5 = 非常不满意)."""

from __future__ import annotations

from enum import IntEnum


class Level(IntEnum):
    """A rating level; the number is also the keypad key and the SMS digit."""

    VERY_SATISFIED = 1
    SATISFIED = 2
    BASICALLY_SATISFIED = 3
    DISSATISFIED = 4
    VERY_DISSATISFIED = 5

    @property
    def label(self) -> str:
        return LABELS[self]

    @classmethod
    def from_label(cls, label: str) -> Level:
        for level, text in LABELS.items():
            if text == label:
                return level
        raise ValueError(f"unknown level label {label!r}")


LABELS: dict[Level, str] = {
    Level.VERY_SATISFIED: "非常满意",
    Level.SATISFIED: "满意",
    Level.BASICALLY_SATISFIED: "基本满意",
    Level.DISSATISFIED: "不满意",
    Level.VERY_DISSATISFIED: "非常不满意",
}

# survey: an outbound rating call pingjia placed (电话回访), told apart from `ivr` (the citizen's
# own call) in reports; both are 电话 for the central store unless the profile says otherwise.
CHANNELS = ("ivr", "survey", "sms", "web", "system", "api")
