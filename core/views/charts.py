"""Bar charts as inline SVG for the batch report, drawn by matplotlib (optional extra ``payerpolicy[report]``).

matplotlib is imported only when a chart is drawn. The SVG is deterministic (fixed hash salt, no
date or creator metadata), keeps text as ``<text>`` elements so the numbers can be read in the
page, and has every ``id`` prefixed with the chart's name so several charts can share one page.
Each bar's value label has the id ``{chart}-{series}-{category}`` (sanitised).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any

from ..evaluation.errors import PayerPolicyError

__all__ = ["bar_chart_svg", "require_matplotlib", "svg_id"]

_COLORS = ("#1f5f99", "#c8553d", "#7a8b99", "#2a9d8f")


def svg_id(*parts: str) -> str:
    """An id made of ``parts``: letters, digits, ``_`` and ``-`` only."""
    return "-".join(re.sub(r"[^A-Za-z0-9_]", "_", p) for p in parts)


def require_matplotlib() -> Any:
    """Return ``(matplotlib, Figure)``; PayerPolicyError naming the extra when matplotlib is not installed."""
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise PayerPolicyError(
            "the report's charts need matplotlib, which is not installed: pip install 'payerpolicy[report]'"
        ) from None
    return matplotlib, Figure


def _plain(text: str) -> str:
    # matplotlib reads $...$ as math; data never should be.
    return text.replace("$", r"\$")


def bar_chart_svg(
    name: str,
    title: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
    *,
    horizontal: bool = False,
    width: float = 6.0,
    height: float = 3.2,
) -> str:
    """One bar chart (grouped when there are several series) as an ``<svg>`` element.

    ``series`` is ``[(label, values in category order), ...]``. Every bar carries its value as a
    label.
    """
    matplotlib, figure_class = require_matplotlib()
    rc = {
        "svg.fonttype": "none",
        "svg.hashsalt": f"payerpolicy-{name}",
        "font.family": "DejaVu Sans",
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
    with matplotlib.rc_context(rc):
        fig = figure_class(figsize=(width, height), layout="constrained")
        ax = fig.add_subplot()
        count = len(series)
        thickness = 0.8 / max(count, 1)
        positions = list(range(len(categories)))
        for n, (label, values) in enumerate(series):
            offsets = [p - 0.4 + thickness * (n + 0.5) for p in positions]
            color = _COLORS[n % len(_COLORS)]
            if horizontal:
                bars = ax.barh(offsets, values, height=thickness, color=color, label=_plain(label))
            else:
                bars = ax.bar(offsets, values, width=thickness, color=color, label=_plain(label))
            texts = ax.bar_label(bars, labels=[str(v) for v in values], padding=2, fontsize=8)
            for text, category in zip(texts, categories, strict=True):
                text.set_gid(svg_id(label, category))
        if horizontal:
            ax.set_yticks(positions, [_plain(c) for c in categories])
            ax.invert_yaxis()
            ax.margins(x=0.12)
        else:
            ax.set_xticks(positions, [_plain(c) for c in categories])
            ax.margins(y=0.15)
        ax.set_title(_plain(title), loc="left", fontsize=10, fontweight="bold")
        if count > 1:
            ax.legend(frameon=False, fontsize=8)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    # one page holds several charts: make every id (and every reference to one) unique to this chart
    prefix = svg_id(name)
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}-{m.group(1)})", svg)
    svg = re.sub(r'xlink:href="#([^"]+)"', lambda m: f'xlink:href="#{prefix}-{m.group(1)}"', svg)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{_attr(title)}" ', 1)


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
