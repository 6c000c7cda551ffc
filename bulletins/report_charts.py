"""The experiment report's figures as the admin template shows them: percentages as text,
and charts as inline SVG coordinates (no JavaScript, nothing fetched)."""

import datetime as dt
import math

from bulletins.selectors import Counts
from bulletins.stats import Uplift, wilson_interval

CONFIDENCE = 0.95
CHART_WIDTH = 640
LABEL_WIDTH = 150  # the left column of a bar chart, for the bar's name
VALUE_WIDTH = 70  # the right margin, for the value written after a bar
ROW_HEIGHT = 30
BAR_HEIGHT = 16
AXIS_HEIGHT = 24  # below the plot, for the axis labels
DAY_PLOT_HEIGHT = 160


def percent(rate: float | None, digits: int = 2) -> str:
    return "—" if rate is None else f"{rate:.{digits}%}"


def signed_percent(change: float) -> str:
    return f"{change:+.1%}".replace("-", "−")


def rates_text(counts: Counts) -> dict[str, str]:
    return {
        "open_rate": percent(counts.open_rate),
        "ctr": percent(counts.ctr),
        "click_to_open": percent(counts.click_to_open),
        "conversion_rate": percent(counts.conversion_rate),
    }


def uplift_summary(result: Uplift | None) -> dict | None:
    """'+12.3% (95% CI −2.1% to +28.0%), p = 0.091', significant when the interval excludes
    0; or the reason there are no figures."""
    if result is None:
        return None
    if result.reason:
        return {"text": result.reason, "significant": False, "reason": True}
    low, high = result.relative_low, result.relative_high
    p_value = "p < 0.001" if result.p_value < 0.001 else f"p = {result.p_value:.3f}"
    return {
        "text": f"{signed_percent(result.relative_uplift)} ({result.confidence:.0%} CI "
        f"{signed_percent(low)} to {signed_percent(high)}), {p_value}",
        "significant": low > 0 or high < 0,
        "corrected": result.continuity_corrected,
        "reason": False,
    }


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above `value` (> 0)."""
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value * 0.999999)


def _px(value: float) -> str:
    """An SVG coordinate, written the same whatever the locale."""
    return f"{value:.1f}"


def _tick_label(value: float, percent: bool) -> str:
    return f"{round(value * 100, 6):g}%" if percent else f"{value:g}"


def rate_chart(rows: list[tuple[str, int, int]]) -> dict:
    """Horizontal bars, one per (label, successes, trials): the rate with its Wilson interval
    as whiskers. A row without trials gets a label and no bar."""
    bars = []
    for label, successes, trials in rows:
        if trials:
            low, high = wilson_interval(successes=successes, trials=trials, confidence=CONFIDENCE)
            bars.append({"label": label, "rate": successes / trials, "low": low, "high": high})
        else:
            bars.append({"label": label, "rate": None, "low": None, "high": None})
    top = _nice_ceiling(max([bar["high"] or 0 for bar in bars] + [0]) or 0.01)
    plot = CHART_WIDTH - LABEL_WIDTH - VALUE_WIDTH
    scale = plot / top
    for index, bar in enumerate(bars):
        middle = index * ROW_HEIGHT + ROW_HEIGHT / 2
        bar["label_y"] = _px(middle + 4)
        bar["y"] = _px(middle - BAR_HEIGHT / 2)
        bar["middle"] = _px(middle)
        bar["cap_top"], bar["cap_bottom"] = _px(middle - 6), _px(middle + 6)
        if bar["rate"] is None:
            bar["text"] = f"{bar['label']}: nothing delivered"
            continue
        bar["width"] = _px(bar["rate"] * scale)
        bar["low_x"] = _px(LABEL_WIDTH + bar["low"] * scale)
        bar["high_x"] = _px(LABEL_WIDTH + bar["high"] * scale)
        bar["value_x"] = _px(LABEL_WIDTH + max(bar["rate"], bar["high"]) * scale + 6)
        bar["value"] = percent(bar["rate"])
        bar["interval"] = f"{percent(bar['low'])} to {percent(bar['high'])}"
        bar["text"] = f"{bar['label']}: {bar['value']} ({CONFIDENCE:.0%} CI {bar['interval']})"
    plot_height = len(bars) * ROW_HEIGHT
    ticks = [
        {"x": _px(LABEL_WIDTH + value * scale), "label": _tick_label(value, percent=True)}
        for value in (0, top / 2, top)
    ]
    return {
        "bars": bars,
        "ticks": ticks,
        "width": CHART_WIDTH,
        "height": plot_height + AXIS_HEIGHT,
        "plot_left": LABEL_WIDTH,
        "plot_bottom": plot_height,
        "tick_label_y": plot_height + 16,
    }


def daily_chart(by_day: list[tuple[dt.date, int, int]]) -> dict | None:
    """Pairs of vertical bars per day, human clicks and conversions, from the first day with
    either to the last (days without any show as empty)."""
    if not by_day:
        return None
    counts = {day: (clicks, conversions) for day, clicks, conversions in by_day}
    first, last = by_day[0][0], by_day[-1][0]
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    top = _nice_ceiling(max(max(clicks, conversions) for _, clicks, conversions in by_day) or 1)
    left, plot = 44, CHART_WIDTH - 44 - 10
    slot = plot / len(days)
    bar = min(slot * 0.4, 14)
    scale = DAY_PLOT_HEIGHT / top
    label_every = math.ceil(len(days) / 8)
    columns = []
    for index, day in enumerate(days):
        clicks, conversions = counts.get(day, (0, 0))
        start = left + index * slot + (slot - 2 * bar) / 2
        columns.append(
            {
                "text": f"{day:%Y-%m-%d}: {clicks} clicks, {conversions} conversions",
                "clicks_x": _px(start),
                "clicks_y": _px(DAY_PLOT_HEIGHT - clicks * scale),
                "clicks_height": _px(clicks * scale),
                "conversions_x": _px(start + bar),
                "conversions_y": _px(DAY_PLOT_HEIGHT - conversions * scale),
                "conversions_height": _px(conversions * scale),
                "label": f"{day:%d %b}" if index % label_every == 0 else "",
                "label_x": _px(left + (index + 0.5) * slot),
            }
        )
    return {
        "columns": columns,
        "bar_width": _px(bar),
        "ticks": [
            {"y": _px(DAY_PLOT_HEIGHT - value * scale), "label": _tick_label(value, percent=False)}
            for value in (0, top / 2, top)
        ],
        "width": CHART_WIDTH,
        "height": DAY_PLOT_HEIGHT + AXIS_HEIGHT + 10,
        "plot_left": left,
        "plot_right": CHART_WIDTH - 10,
        "plot_bottom": DAY_PLOT_HEIGHT,
        "tick_label_y": DAY_PLOT_HEIGHT + 16,
        "first": first,
        "last": last,
    }
