"""Ages and durations: ``min-age: 3d`` (a cool-down) and ``max-age: 365d``. No I/O."""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["age_problem", "format_duration", "parse_duration", "parse_time"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^(\d{1,6})([smhdw])$")


def parse_duration(text: str) -> dt.timedelta:
    """``90s``, ``30m``, ``12h``, ``3d`` or ``2w``.

    Raises:
        ValueError: anything else (the message says what is accepted).
    """
    found = _DURATION.match(text.strip())
    if not found:
        raise ValueError(f"{text!r} is not a duration; use a whole number and s, m, h, d or w")
    return dt.timedelta(seconds=int(found[1]) * _UNITS[found[2]])


def format_duration(value: dt.timedelta) -> str:
    """The shortest exact form: ``3d``, ``36h``, ``90s``."""
    seconds = int(value.total_seconds())
    for unit in ("w", "d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def parse_time(text: object) -> dt.datetime | None:
    """An RFC 3339 time (an image config's ``created``) as an aware datetime, else None.

    The zero time Go writes for an unset ``created`` (``0001-01-01T00:00:00Z``) is None.
    """
    if not isinstance(text, str) or not text or len(text) > 64:
        return None
    value = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    value = re.sub(r"(\.\d{6})\d+", r"\1", value)  # Go writes nanoseconds
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return None if parsed.year <= 1 else parsed


def age_problem(
    created: dt.datetime | None,
    now: dt.datetime,
    min_age: dt.timedelta | None,
    max_age: dt.timedelta | None,
) -> str | None:
    """Why ``created`` is too young or too old for the policy, or None when it fits."""
    if min_age is None and max_age is None:
        return None
    if created is None:
        return "its age is unknown (no created time in its config, no verified signing time)"
    age = now - created
    if min_age is not None and age < min_age:
        return (
            f"it is younger than min-age {format_duration(min_age)} "
            f"(created {created:%Y-%m-%dT%H:%M:%SZ})"
        )
    if max_age is not None and age > max_age:
        return (
            f"it is older than max-age {format_duration(max_age)} "
            f"(created {created:%Y-%m-%dT%H:%M:%SZ})"
        )
    return None
