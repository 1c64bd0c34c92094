"""Графики панели как SVG на сервере: без CDN и JS, масштабируются по ширине (viewBox).

Столбцы — <rect class="bar">, точки линий — <circle class="point">: по ним проверяют тесты.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 480, 200
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 52, 10, 16, 28
MAX_X_LABELS = 8
ACCENT, GOOD, BAD, MUTED = "#2563eb", "#15803d", "#b91c1c", "#9ca3af"

Formatter = Callable[[float], str]


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]
    color: str = ACCENT


def _number(value: float) -> str:
    return f"{value:,.0f}".replace(",", " ") if abs(value) >= 10 else f"{value:.2g}"


def _f(value: float) -> str:
    return f"{value:.1f}"


def _open(title: str, height: int = HEIGHT) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {height}" '
        f'role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]


def _empty(title: str) -> SafeString:
    parts = _open(title, 80)
    parts.append(f'<text class="empty" x="{WIDTH / 2}" y="44" text-anchor="middle">нет данных</text></svg>')
    return mark_safe("".join(parts))  # noqa: S308 — всё пользовательское прошло через escape


def _x_labels(labels: Sequence[str], xs: Sequence[float]) -> list[str]:
    # Подписи не налезают друг на друга: не больше MAX_X_LABELS, последняя — всегда
    step = max(1, -(-len(labels) // MAX_X_LABELS))
    shown = set(range(0, len(labels) - 1, step))
    last = len(labels) - 1
    # Последняя подпись вытесняет слишком близкую соседку слева
    shown = {i for i in shown if last - i >= step or step == 1} | {last}
    y = HEIGHT - 8
    # Крайняя правая подпись не должна обрезаться краем графика
    anchors = {i: "end" if i == last and last else "middle" for i in shown}
    right = WIDTH - PAD_RIGHT
    return [
        f'<text x="{_f(right if anchors[i] == "end" else xs[i])}" y="{y}" text-anchor="{anchors[i]}">'
        f"{escape(labels[i])}</text>"
        for i in sorted(shown)
    ]


def _y_axis(top: float, fmt: Formatter) -> list[str]:
    bottom_y, top_y = HEIGHT - PAD_BOTTOM, PAD_TOP
    return [
        f'<line x1="{PAD_LEFT}" y1="{bottom_y}" x2="{WIDTH - PAD_RIGHT}" y2="{bottom_y}" stroke="#d1d5db"/>',
        f'<line x1="{PAD_LEFT}" y1="{top_y}" x2="{WIDTH - PAD_RIGHT}" y2="{top_y}" stroke="#eef0f3"/>',
        f'<text x="{PAD_LEFT - 4}" y="{bottom_y}" text-anchor="end">{escape(fmt(0))}</text>',
        f'<text x="{PAD_LEFT - 4}" y="{top_y + 8}" text-anchor="end">{escape(fmt(top))}</text>',
    ]


def _scale_y(value: float, top: float) -> float:
    plot = HEIGHT - PAD_TOP - PAD_BOTTOM
    return HEIGHT - PAD_BOTTOM - (value / top * plot if top else 0)


def svg_bar_chart(
    *,
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    color: str = ACCENT,
    fmt: Formatter = _number,
) -> SafeString:
    """Столбцы по дням (или иным меткам оси X); отрицательные прижимаются к нулю."""
    if not labels or len(labels) != len(values):
        return _empty(title)
    top = max(max(values), 0) or 1
    slot = (WIDTH - PAD_LEFT - PAD_RIGHT) / len(values)
    bar = max(slot * 0.7, 1)
    xs = [PAD_LEFT + slot * i + slot / 2 for i in range(len(values))]
    parts = _open(title) + _y_axis(top, fmt)
    for x, label, value in zip(xs, labels, values, strict=True):
        y = _scale_y(max(value, 0), top)
        parts.append(
            f'<rect class="bar" x="{_f(x - bar / 2)}" y="{_f(y)}" width="{_f(bar)}" '
            f'height="{_f(HEIGHT - PAD_BOTTOM - y)}" fill="{color}">'
            f"<title>{escape(label)}: {escape(fmt(value))}</title></rect>"
        )
    parts += _x_labels(labels, xs)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 — подписи экранированы


def svg_line_chart(
    *,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    top: float | None = None,
    fmt: Formatter = _number,
) -> SafeString:
    """Линии по дням; None — нет значения (линия рвётся, точки нет). top — верх шкалы (например 1.0)."""
    values = [v for s in series for v in s.values if v is not None]
    if not labels or not values or any(len(s.values) != len(labels) for s in series):
        return _empty(title)
    top = top or max(max(values), 0) or 1
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    xs = [PAD_LEFT + plot_w / 2] if len(labels) == 1 else [
        PAD_LEFT + plot_w * i / (len(labels) - 1) for i in range(len(labels))
    ]  # fmt: skip
    parts = _open(title) + _y_axis(top, fmt)
    for index, line in enumerate(series):
        segment: list[str] = []
        segments: list[list[str]] = [segment]
        for x, label, value in zip(xs, labels, line.values, strict=True):
            if value is None:
                segment = []
                segments.append(segment)
                continue
            y = _scale_y(value, top)
            segment.append(f"{_f(x)},{_f(y)}")
            parts.append(
                f'<circle class="point" cx="{_f(x)}" cy="{_f(y)}" r="3" fill="{line.color}">'
                f"<title>{escape(line.name)} · {escape(label)}: {escape(fmt(value))}</title></circle>"
            )
        for points in segments:
            if len(points) > 1:
                parts.append(
                    f'<polyline class="line" points="{" ".join(points)}" fill="none" '
                    f'stroke="{line.color}" stroke-width="2"/>'
                )
        # Легенда в правом верхнем углу, по строке на ряд
        legend_y = PAD_TOP + 15 * index
        parts.append(
            f'<text class="legend" x="{WIDTH - PAD_RIGHT}" y="{legend_y + 8}" text-anchor="end" '
            f'style="fill:{line.color}">{escape(line.name)}</text>'
        )
    parts += _x_labels(labels, xs)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 — подписи экранированы


def svg_hbar_chart(*, title: str, bars: Sequence[tuple[str, float]], fmt: Formatter = _number) -> SafeString:
    """Горизонтальные столбцы по моделям; отрицательные (убыток) — красным, длина по модулю."""
    if not bars:
        return _empty(title)
    row, label_w, value_w = 26, 130, 80
    height = PAD_TOP + row * len(bars) + 6
    top = max(abs(value) for _, value in bars) or 1
    plot_w = WIDTH - label_w - value_w
    parts = _open(title, height)
    for i, (label, value) in enumerate(bars):
        y = PAD_TOP + row * i
        width = max(abs(value) / top * plot_w, 1 if value else 0)
        color = BAD if value < 0 else ACCENT
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end">{escape(label[:20])}</text>'
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{_f(width)}" height="{row - 8}" '
            f'fill="{color}">'
            f"<title>{escape(label)}: {escape(fmt(value))}</title></rect>"
            f'<text x="{_f(label_w + width + 6)}" y="{y + 16}">{escape(fmt(value))}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 — подписи экранированы
