"""Dates as Chinese editors write them, read by one parser and shown in the site's time zone.

``2025-3-1``, ``2025/3/1``, ``2025.3.1``, ``2025年3月1日``, ``2025年3月1日 9:00``,
``2025年3月1日9点30分``, ``20250301`` and ISO 8601 (with or without an offset) all
read; a date that does not exist (``2024-02-31``) is explained in words rather
than called unreadable. Every command, page and report shows times through
:func:`shown`, so they all agree on the site's time zone.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, time, timedelta, timezone, tzinfo

EXAMPLE = "2026-11-20 09:30、2026/11/20 或 2026年11月20日 9:30"

_WRITTEN = re.compile(
    r"""^(?:
        (?P<y>\d{4})\s*(?:[-/.]|年)\s*(?P<m>\d{1,2})\s*(?:[-/.]|月)\s*(?P<d>\d{1,2})\s*日?
      | (?P<cy>\d{4})(?P<cm>\d{2})(?P<cd>\d{2})
    )
    (?:
        (?:\s+|T|(?<=日))
        (?P<h>\d{1,2})\s*(?:
            [:：]\s*(?P<min>\d{1,2})(?:\s*[:：]\s*(?P<s>\d{1,2})(?:\.\d+)?)?
          | [点时](?:\s*(?P<cmin>\d{1,2})\s*分?)?
        )
    )?
    \s*(?P<tz>Z|[+-]\d{2}:?\d{2})?$""",
    re.X,
)


class DateError(ValueError):
    pass


def _number(match, *names) -> int | None:
    for name in names:
        if match.group(name) is not None:
            return int(match.group(name))
    return None


def _offset(text: str | None) -> tzinfo | None:
    if not text:
        return None
    if text == "Z":
        return timezone.utc
    sign = 1 if text[0] == "+" else -1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def _check_parts(text: str, year: int, month: int, day: int, hour: int, minute: int, second: int) -> None:
    """Explain in words what is impossible about a date that matched the pattern."""
    if not 1 <= month <= 12:
        raise DateError(f"日期 {text} 不存在：月份应在 1 到 12 之间，写的是 {month} 月")
    last = calendar.monthrange(year, month)[1]
    if not 1 <= day <= last:
        raise DateError(f"日期 {text} 不存在：{year}年{month}月只有 {last} 天，没有 {day} 日")
    if hour > 23 or minute > 59 or second > 59:
        raise DateError(f"时间 {text} 不存在：小时应在 0–23、分钟和秒应在 0–59 之间")


def parse_written(text: str) -> tuple[datetime, bool] | None:
    """(the moment, whether a time of day was written), or None if ``text`` is no date form."""
    match = _WRITTEN.match(text)
    if match is None:
        return None
    year = _number(match, "y", "cy")
    month = _number(match, "m", "cm")
    day = _number(match, "d", "cd")
    hour = _number(match, "h")
    minute = _number(match, "min", "cmin") or 0
    second = _number(match, "s") or 0
    _check_parts(text, year, month, day, hour or 0, minute, second)
    moment = datetime(year, month, day, hour or 0, minute, second, tzinfo=_offset(match.group("tz")))
    return moment, hour is not None


def parse_date(value, tz: tzinfo, *, end_of_day: bool = False) -> datetime:
    """A moment from a front matter value or a command-line option.

    A value without an offset is in the site's time zone ``tz``; one with an
    offset is converted to it, so every time shown is in that zone. With
    ``end_of_day``, a bare date means its last second (``--until 2026-11-20``
    includes that day).
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time(23, 59, 59) if end_of_day else time())
    else:
        text = str(value).strip()
        if not text:
            raise DateError("日期为空")
        written = parse_written(text)
        if written is not None:
            moment, has_time = written
        else:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise DateError(f"无法识别的日期 {text!r}，应写成 {EXAMPLE} 这样的格式") from None
            has_time = True
        if end_of_day and not has_time:
            moment = moment.replace(hour=23, minute=59, second=59)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=tz)
    return moment.astimezone(tz)


def shown(moment: datetime | str | None, tz: tzinfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A moment (or an ISO string) as people read it: in the site's time zone."""
    if moment is None or moment == "":
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(tz).strftime(fmt)
