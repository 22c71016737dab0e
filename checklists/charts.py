"""Chart geometry for server-rendered SVG: numbers in, rectangles and labels out.

No script and no library: the reports page is SVG the server draws, so it reads without
JavaScript, prints as vectors and loads nothing from another origin. Each bar carries the
link to the history rows behind it.
"""

from __future__ import annotations

from datetime import timedelta

HEIGHT = 160
BAR = 22
GAP = 8
LEFT = 34  # room for the axis labels


def _ticks(peak: float, count: int = 4) -> list[float]:
    if peak <= 0:
        return [0]
    step = peak / count
    magnitude = 10 ** (len(str(int(step))) - 1) if step >= 1 else 1
    step = max(1, round(step / magnitude)) * magnitude
    return [step * i for i in range(count + 1) if step * i <= peak * 1.05]


def stacked_weeks(weeks: list[dict], outcomes, link) -> dict:
    """Bars per week stacked by outcome; `link(week_start, week_end, status)` is a bar's URL."""
    peak = max((sum(w.get(status, 0) for status, _, _ in outcomes) for w in weeks), default=0)
    bars = []
    for index, week in enumerate(weeks):
        x = LEFT + index * (BAR + GAP)
        y = HEIGHT
        segments = []
        start, end = week["week"].date(), (week["week"] + timedelta(days=6)).date()
        for status, label, colour in outcomes:
            n = week.get(status, 0)
            if not n:
                continue
            height = max(1, round(HEIGHT * n / peak)) if peak else 0
            y -= height
            segments.append({"y": y, "height": height, "n": n, "label": label, "colour": colour, "url": link(start, end, status)})
        bars.append({"x": x, "segments": segments, "label": start.strftime("%m/%d"), "start": start, "total": sum(s["n"] for s in segments)})
    return _frame(bars, peak)


def simple_bars(rows: list[dict], value: str, link, *, suffix: str = "") -> dict:
    """One bar per row (a month); rows whose value is None get no bar."""
    peak = max((r[value] for r in rows if r[value] is not None), default=0)
    bars = []
    for index, row in enumerate(rows):
        x = LEFT + index * (BAR + GAP)
        v = row[value]
        height = round(HEIGHT * v / peak) if peak and v is not None else 0
        bars.append({
            "x": x, "y": HEIGHT - height, "height": height, "value": v, "label": row["month"].strftime("%b %y"),
            "text": "—" if v is None else f"{v}{suffix}", "url": link(row),
        })
    return _frame(bars, peak)


def _frame(bars: list[dict], peak: float) -> dict:
    return {
        "bars": bars,
        "width": LEFT + max(len(bars), 1) * (BAR + GAP),
        "height": HEIGHT,
        "bar": BAR,
        "peak": peak,
        "ticks": [{"value": t, "y": HEIGHT - (round(HEIGHT * t / peak) if peak else 0)} for t in _ticks(peak)],
    }


def share(n: float, peak: float, width: int = 160) -> int:
    """A horizontal bar's length for tables of items."""
    return max(1, round(width * n / peak)) if peak and n else 0
