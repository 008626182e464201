"""PNG plots for dataset cards and reports, drawn with matplotlib's Agg backend (no display, no GUI toolkit).

Contract. Each function draws one figure from plain numbers and returns the PNG's bytes; nothing is shown and no
global matplotlib state outlives the call (figures are created and closed with the object API, never ``pyplot``),
so plots can be drawn from worker threads and under test runners alike.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any


def figure(width: float = 6.4, height: float = 4.0) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def histogram_png(series: Mapping[str, Sequence[float]], *, title: str, xlabel: str, bins: int = 30,
                  density: bool = False) -> bytes:
    """Step histograms of one or more series on shared bins (one legend entry per series)."""
    fig, ax = figure()
    values = [v for vs in series.values() for v in vs]
    if values:
        low, high = min(values), max(values)
        if high == low:
            low, high = low - 0.5, high + 0.5
        edges = [low + (high - low) * i / bins for i in range(bins + 1)]
        for label, vs in series.items():
            if vs:
                ax.hist(list(vs), bins=edges, histtype="step", linewidth=1.5, density=density,
                        label=f"{label} (n={len(vs)})")
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density" if density else "codes")
    return png(fig)


def lines_png(series: Mapping[str, Sequence[tuple[float, float | None]]], *, title: str, xlabel: str,
              ylabel: str, ylim: tuple[float, float] | None = None, integer_x: bool = True) -> bytes:
    """One line with markers per series of (x, y) points; points whose y is None are left out."""
    fig, ax = figure()
    for label, points in series.items():
        pts = [(x, y) for x, y in points if y is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", linewidth=1.5, label=label)
    if any(series.values()):
        ax.legend(fontsize="small")
    if integer_x:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(True, alpha=0.3)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return png(fig)


def bars_png(groups: Sequence[str], series: Mapping[str, Sequence[tuple[float | None, float | None]]], *,
             title: str, ylabel: str) -> bytes:
    """Grouped bars: one group per name in ``groups``, one bar per series, each a (mean, sd) or None."""
    fig, ax = figure(7.2, 4.0)
    width = 0.8 / max(1, len(series))
    for i, (label, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        means = [m if m is not None else 0.0 for m, _ in values]
        errs = [s if s is not None else 0.0 for _, s in values]
        ax.bar(xs, means, width=width, yerr=errs, capsize=3, label=label)
    ax.set_xticks(list(range(len(groups))))
    ax.set_xticklabels(list(groups))
    # below the axes, so that no legend covers a bar
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=min(len(series), 4),
              frameon=False)
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    return png(fig)

