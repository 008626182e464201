"""PNG plots for dataset cards and reports, drawn with matplotlib's Agg backend (no display, no GUI toolkit).

Contract. Each function draws one figure from plain numbers and returns the PNG's bytes; nothing is shown and no
global matplotlib state outlives the call (figures are created and closed with the object API, never ``pyplot``),
so plots can be drawn from worker threads and under test runners alike.

Readability rules every plot keeps: a title and labelled axes (units in the label); the legend outside the axes
(below them), so that it never covers data; integer axes (rounds, chain steps) ticked at the integers present, also
for a single point; value axes from 0 (never zoomed onto one value); series that coincide stay visible (each line
its own marker and line style, earlier ones drawn larger); a bar with no value says "n/a" rather than drawing 0.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", ":", "-.")
MAX_INTEGER_TICKS = 20  # beyond this many integer x values, matplotlib picks the ticks (still integers)


def figure(width: float = 6.4, height: float = 4.0) -> tuple[Any, Any]:
    """A figure with matplotlib's constrained layout (room for titles, labels and a legend outside the axes)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    fig.get_layout_engine().set(w_pad=0.1, h_pad=0.1)  # inches of margin around the texts
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def png(fig: Any) -> bytes:
    buf = io.BytesIO()
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(buf, format="png")
    return buf.getvalue()


LEGEND_ROW = 0.2  # inches per legend row beyond the first two: the figure grows rather than the axes shrink


def legend_below(fig: Any, ax: Any) -> None:
    """The legend under the axes and their x label, never over data: as many columns (up to 4) as fit the figure's
    width, the figure taller by a row's height for each row beyond two."""
    handles, labels = ax.get_legend_handles_labels()
    if not labels:
        return
    renderer = fig.canvas.get_renderer()
    for ncol in range(min(len(labels), 4), 0, -1):
        legend = fig.legend(handles, labels, loc="outside lower center", ncol=ncol, fontsize="small", frameon=False)
        if ncol == 1 or legend.get_window_extent(renderer).width <= fig.bbox.width - 20:
            break
        legend.remove()
    rows = -(-len(labels) // ncol)
    if rows > 2:
        fig.set_figheight(fig.get_figheight() + LEGEND_ROW * (rows - 2))


def integer_axis(ax: Any, xs: Sequence[float]) -> None:
    """Ticks at every integer from the lowest x to the highest (one round too: no 0.945 .. 1.050 ticks), with half a
    step of margin on each side."""
    from matplotlib.ticker import MaxNLocator

    if not xs:
        return
    low, high = min(xs), max(xs)
    if all(float(x).is_integer() for x in xs) and high - low < MAX_INTEGER_TICKS:
        ax.set_xticks(list(range(int(low), int(high) + 1)))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(low - 0.5, high + 0.5)


def histogram_png(series: Mapping[str, Sequence[float]], *, title: str, xlabel: str, bins: int = 30,
                  density: bool = False) -> bytes:
    """Step histograms of one or more series on shared bins (one legend entry per series).

    ``density``: each series as the share of its own codes per bin (%), so that series of different sizes compare;
    otherwise counts of codes (integer ticks)."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = figure()
    values = [v for vs in series.values() for v in vs]
    drawn = 0
    if values:
        low, high = min(values), max(values)
        if high == low:
            low, high = low - 0.5, high + 0.5
        edges = [low + (high - low) * i / bins for i in range(bins + 1)]
        for i, (label, vs) in enumerate(series.items()):
            if vs:
                weights = [100.0 / len(vs)] * len(vs) if density else None
                ax.hist(list(vs), bins=edges, histtype="step", weights=weights,
                        linewidth=2.5 if i == 0 else 1.5, linestyle=LINESTYLES[i % len(LINESTYLES)],
                        label=f"{label} (n={len(vs)})")
                drawn += 1
        legend_below(fig, ax)
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    if not density:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(bottom=0)
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of the series' codes (%)" if density else "codes")
    return png(fig)


def lines_png(series: Mapping[str, Sequence[tuple[float, float | None]]], *, title: str, xlabel: str,
              ylabel: str, ylim: tuple[float, float | None] | None = (0.0, None), integer_x: bool = True,
              groups: Mapping[str, str] | None = None) -> bytes:
    """One line with markers per series of (x, y) points; points whose y is None are left out.

    ``ylim``: (bottom, top), top None for matplotlib's choice; the default starts the axis at 0. ``groups`` maps a
    series to a group (e.g. its run): a group's series share a colour and differ in line style and marker (e.g.
    the rounds of one run); without it every series has a colour of its own."""
    from matplotlib import rcParams

    fig, ax = figure()
    colours = rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    group_of = dict(groups or {})
    group_order: dict[str, int] = {}
    within: dict[str, int] = {}
    xs: list[float] = []
    drawn = 0
    for i, (label, points) in enumerate(series.items()):
        pts = [(x, y) for x, y in points if y is not None]
        if not pts:
            continue
        group = group_of.get(label, label)
        colour = colours[group_order.setdefault(group, len(group_order)) % len(colours)]
        k = within[group] = within.get(group, -1) + 1
        style = k if groups else i
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color=colour, marker=MARKERS[style % len(MARKERS)],
                linestyle=LINESTYLES[style % len(LINESTYLES)], markersize=max(4.0, 9.0 - 2.0 * style),
                linewidth=1.5, label=label, zorder=2 + drawn)
        xs += [p[0] for p in pts]
        drawn += 1
    if drawn == 0:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    legend_below(fig, ax)
    if integer_x:
        integer_axis(ax, xs)
    if ylim is not None:
        ax.set_ylim(bottom=ylim[0], top=ylim[1])
    ax.grid(True, alpha=0.3)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return png(fig)


def bars_png(groups: Sequence[str], series: Mapping[str, Sequence[tuple[float | None, float | None]]], *,
             title: str, ylabel: str, ylim: tuple[float, float | None] = (0.0, None), digits: int = 1,
             missing: str = "n/a") -> bytes:
    """Grouped bars: one group per name in ``groups``, one bar per series, each a (mean, sd) or None.

    Each bar carries its value (``digits`` decimals) above it, so a bar of 0 reads as 0; a missing value draws no
    bar and says ``missing`` in its place; an sd of None draws no error bar. ``ylim``: (bottom, top), top None for 15%
    above the highest bar and error bar (a fixed top grows a little above bars that reach it, ticks ending there)."""
    fig, ax = figure(7.2, 4.0)
    width = 0.8 / max(1, len(series))
    tops = [m + (s or 0.0) for values in series.values() for m, s in values if m is not None]
    highest = max(tops, default=0.0)
    # room above the highest bar for its value; a fixed top (100%) stays the highest tick
    top = max(ylim[1], 1.1 * highest) if ylim[1] is not None else (1.15 * highest if highest > 0 else 1.0)
    for i, (label, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        present = [(x, m, s) for x, (m, s) in zip(xs, values, strict=True) if m is not None]
        container = ax.bar([x for x, _, _ in present], [m for _, m, _ in present], width=width, label=label)
        colour = container.patches[0].get_facecolor() if container.patches else None
        for x, m, s in present:
            if s is not None:
                ax.errorbar([x], [m], yerr=[s], fmt="none", ecolor="black", capsize=3, linewidth=1)
            ax.text(x, m + (s or 0.0) + 0.01 * (top - ylim[0]), f"{m:.{digits}f}", ha="center", va="bottom",
                    fontsize="x-small")
        for x, (m, _) in zip(xs, values, strict=True):
            if m is None:
                ax.text(x, ylim[0] + 0.01 * (top - ylim[0]), missing, ha="center", va="bottom", fontsize="x-small",
                        color=colour or "dimgrey")
    ax.set_xticks(list(range(len(groups))))
    ax.set_xticklabels(list(groups))
    ax.set_xlim(-0.5, len(groups) - 0.5)
    ax.set_ylim(ylim[0], top)
    if ylim[1] is not None and top > ylim[1]:
        ax.set_yticks([t for t in ax.get_yticks() if ylim[0] <= t <= ylim[1]])
    legend_below(fig, ax)
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    return png(fig)
