"""What every part of the spec's parsing shares: SpecError, and the checks of one field
(durations, bounded numbers, label names) whose messages name it."""

from __future__ import annotations

import re
from typing import Any, Mapping

LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$")


class SpecError(ValueError):
    """A spec the operator cannot act on; the message names the field."""


def parse_duration(text: Any, field: str) -> float:
    """'90s', '2m', '1h30m', '250ms' -> seconds (Go-style, as Kubernetes users write them)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    match = _DURATION.match(str(text).strip()) if text not in (None, "") else None
    if not match or not any(match.groups()):
        raise SpecError(f"{field}: {text!r} is not a duration such as 30s, 2m, 1h30m or 250ms")
    h, m, s, ms = (float(g) if g else 0.0 for g in match.groups())
    return h * 3600 + m * 60 + s + ms / 1000


def _int(raw: Mapping, key: str, field: str, default: int, low: int, high: int | None = None) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise SpecError(f"{field}.{key}: must be an integer {bound}, got {value!r}")
    return value


def _float(raw: Mapping, key: str, field: str, default: float, low: float, high: float) -> float:
    value = raw.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
        raise SpecError(f"{field}.{key}: must be a number between {low} and {high}, got {value!r}")
    return float(value)
