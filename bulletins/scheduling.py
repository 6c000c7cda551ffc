"""A bulletin's own schedule (daily, weekly on a day, or a cron expression, at a time in a
time zone) as the crontab fields beat runs on, checked and said in plain words. Plain values in
and out: the model validates with it and the schedule service materialises it."""

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from celery.schedules import crontab
from cron_descriptor import get_description

NONE, DAILY, WEEKLY, CRON = "none", "daily", "weekly", "cron"
# Cron's numbering: 0 is Sunday.
WEEKDAYS = [
    ("1", "Monday"),
    ("2", "Tuesday"),
    ("3", "Wednesday"),
    ("4", "Thursday"),
    ("5", "Friday"),
    ("6", "Saturday"),
    ("0", "Sunday"),
]
CRON_PARTS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


@dataclass(frozen=True)
class ScheduleSpec:
    frequency: str
    time: dt.time | None
    weekday: str
    cron: str
    timezone: str


def schedule_errors(spec: ScheduleSpec) -> dict[str, str]:
    """Field -> what is wrong, in words a marketer reads (empty: the schedule can run)."""
    errors: dict[str, str] = {}
    try:
        zoneinfo.ZoneInfo(spec.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        errors["send_timezone"] = (
            f"Unknown time zone {spec.timezone!r}: use a name such as Europe/Paris or UTC."
        )
    if spec.frequency in (DAILY, WEEKLY) and spec.time is None:
        errors["send_time"] = "Give the time of day to send at."
    if spec.frequency == WEEKLY and spec.weekday not in dict(WEEKDAYS):
        errors["send_weekday"] = "Choose the day of the week."
    if spec.frequency == CRON:
        problem = _cron_problem(spec.cron)
        if problem:
            errors["send_cron"] = problem
    return errors


def _cron_problem(expression: str) -> str:
    parts = expression.split()
    if len(parts) != len(CRON_PARTS):
        return (
            "A cron expression has five parts: minute, hour, day of month, month, day of week "
            "(for example `0 8 * * 1-5`: 08:00 on weekdays)."
        )
    try:
        crontab(**dict(zip(CRON_PARTS, parts, strict=True)))
    except (ValueError, TypeError) as error:
        return f"This cron expression cannot run: {error}."
    if not parts[0].isdigit():
        return (
            "A bulletin goes out at most once an hour: give the minute as one number "
            "(for example `0`), not a range or `*`."
        )
    return ""


def crontab_fields(spec: ScheduleSpec) -> dict[str, str] | None:
    """The CrontabSchedule fields for the spec (None: not scheduled)."""
    if spec.frequency == NONE:
        return None
    if spec.frequency == CRON:
        values = dict(zip(CRON_PARTS, spec.cron.split(), strict=True))
    else:
        values = {
            "minute": str(spec.time.minute),
            "hour": str(spec.time.hour),
            "day_of_month": "*",
            "month_of_year": "*",
            "day_of_week": spec.weekday if spec.frequency == WEEKLY else "*",
        }
    return {**values, "timezone": spec.timezone}


def schedule_summary(spec: ScheduleSpec) -> str:
    if spec.frequency == NONE:
        return "Not scheduled"
    if schedule_errors(spec):
        return "Not valid yet"
    zone = f" ({spec.timezone})"
    if spec.frequency == CRON:
        return get_description(spec.cron) + zone
    at = f"at {spec.time:%H:%M}"
    if spec.frequency == DAILY:
        return f"Every day {at}{zone}"
    return f"Every {dict(WEEKDAYS)[spec.weekday]} {at}{zone}"
