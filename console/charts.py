"""Charts as inline SVG, drawn on the server: no JavaScript, no CDN (the console may run on a
network with no internet). Each bar and point carries its label and value as data attributes
and a <title>, so a screen reader, a tooltip and a test can all read the figure."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

WIDTH = 640
HEIGHT = 260
PAD_LEFT = 48
PAD_RIGHT = 12
PAD_TOP = 16
PAD_BOTTOM = 56
ACCENT = "#c8161d"
GRID = "#dee0e3"
INK = "#646a73"


def _number(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.2f}"


def _scale_top(values: Sequence[float]) -> float:
    """A round ceiling for the axis, so grid lines fall on readable numbers."""
    top = max([v for v in values if v > 0], default=1.0)
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000, 2000, 5000, 10000):
        if top <= step * 4:
            return float(step * 4)
    return top


def _frame(title: str, top: float, fmt: Callable[[float], str], body: list[str]) -> Markup:
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    grid = []
    for i in range(5):
        y = PAD_TOP + plot_h - plot_h * i / 4
        grid.append(
            f'<line x1="{PAD_LEFT}" y1="{y:.1f}" x2="{WIDTH - PAD_RIGHT}" y2="{y:.1f}" '
            f'stroke="{GRID}"/><text x="{PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" '
            f'font-size="11" fill="{INK}">{escape(fmt(top * i / 4))}</text>'
        )
    return Markup(
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} '
        f'{HEIGHT}" width="100%" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        + "".join(grid)
        + "".join(body)
        + "</svg>"
    )


def _label(x: float, text: str) -> str:
    short = text if len(text) <= 8 else text[:7] + "…"
    return (
        f'<text x="{x:.1f}" y="{HEIGHT - PAD_BOTTOM + 16}" text-anchor="middle" font-size="11" '
        f'fill="{INK}">{escape(short)}</text>'
    )


def bar_chart(
    title: str,
    items: Sequence[tuple[str, float]],
    fmt: Callable[[float], str] = _number,
    top: float | None = None,
) -> Markup:
    """One bar per (label, value); an empty chart says so rather than drawing nothing."""
    if not items:
        return _empty(title)
    top = top or _scale_top([v for _, v in items])
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    slot = plot_w / len(items)
    bar_w = min(slot * 0.6, 64)
    body = []
    for i, (label, value) in enumerate(items):
        h = plot_h * max(value, 0) / top
        x = PAD_LEFT + slot * i + (slot - bar_w) / 2
        y = PAD_TOP + plot_h - h
        text = f"{label}：{fmt(value)}"
        body.append(
            f'<rect class="bar" data-label="{escape(label)}" data-value="{_number(value)}" '
            f'x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{ACCENT}">'
            f"<title>{escape(text)}</title></rect>"
            f'<text x="{x + bar_w / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle" font-size="11">'
            f"{escape(fmt(value))}</text>" + _label(x + bar_w / 2, label)
        )
    return _frame(title, top, fmt, body)


def line_chart(
    title: str,
    points: Sequence[tuple[str, float | None]],
    fmt: Callable[[float], str] = _number,
    top: float | None = None,
) -> Markup:
    """A line through the points with a value; a None (no data that day) breaks the line."""
    known = [v for _, v in points if v is not None]
    if not known:
        return _empty(title)
    top = top or _scale_top(known)
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    step = plot_w / max(len(points) - 1, 1)
    every = max(1, len(points) // 10)  # at most about ten axis labels
    body: list[str] = []
    run: list[str] = []
    segments: list[list[str]] = []
    for i, (label, value) in enumerate(points):
        x = PAD_LEFT + (step * i if len(points) > 1 else plot_w / 2)
        if i % every == 0:
            body.append(_label(x, label))
        if value is None:
            if run:
                segments.append(run)
            run = []
            continue
        y = PAD_TOP + plot_h - plot_h * value / top
        run.append(f"{x:.1f},{y:.1f}")
        body.append(
            f'<circle class="point" data-label="{escape(label)}" data-value="{_number(value)}" '
            f'cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{ACCENT}">'
            f"<title>{escape(label)}：{escape(fmt(value))}</title></circle>"
        )
    if run:
        segments.append(run)
    lines = [
        f'<polyline fill="none" stroke="{ACCENT}" stroke-width="2" points="{" ".join(s)}"/>'
        for s in segments
    ]
    return _frame(title, top, fmt, lines + body)


def _empty(title: str) -> Markup:
    return Markup(
        f'<svg class="chart empty" role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} 60"'
        f' width="100%" xmlns="http://www.w3.org/2000/svg"><text x="{WIDTH / 2}" y="34" '
        f'text-anchor="middle" font-size="14" fill="{INK}">暂无数据</text></svg>'
    )


def percent(value: float) -> str:
    """A share (0-1) as a percentage, for rate charts drawn with top=1."""
    return f"{value * 100:.0f}%"
