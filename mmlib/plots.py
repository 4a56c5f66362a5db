"""The figure conventions the chapters share: one colour per modality and one per method across the
book, one style with text legible at page width, PNG at 150 dpi."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import seaborn as sns

from mmlib.methods import display_name

# The smallest text of a figure (ticks, legends), in points; with figures at most 9 inches wide,
# drawn at 100 dpi and shown at the book's page width, it stays above 8 px (tests/test_browser.py).
SMALLEST_FONT_PT = 10

# One colour per modality, everywhere in the book.
MODALITY_COLORS: dict[str, str] = {
    "audio": "#1b9e77", "visual": "#d95f02", "text": "#7570b3",
    "pix": "#e7298a", "fou": "#66a61e", "mor": "#e6ab02", "fac": "#a6761d", "kar": "#666666", "zer": "#1f78b4",
    "m0": "#1b9e77", "m1": "#d95f02", "m2": "#7570b3", "image": "#e7298a", "fused": "#222222",
}
METHOD_ORDER = ("sum", "concat", "ogm", "ogm_ge", "lfm", "crmt", "late_fusion", "mla", "ours", "ours_rownorm")
# One colour per method, everywhere in the book: the paper's method in reds, baselines in the rest
# (Joint a darker blue than Concat, calibrated Sum a darker grey than Sum). Every method registered
# in mmlib.methods has one (tests/test_plots.py).
METHOD_COLORS: dict[str, str] = {
    "sum": "#7f7f7f", "sum_calibrated": "#474747", "concat": "#4c72b0", "joint": "#23395d",
    "ogm": "#8172b3", "ogm_ge": "#64b5cd", "lfm": "#937860", "crmt": "#da8bc3", "late_fusion": "#ccb974",
    "mla": "#55a868", "qmf": "#8c564b", "mmin": "#17becf", "tate": "#bcbd22",
    "ours": "#c44e52", "ours_rownorm": "#dd8452", "ours_recorded": "#f1a340",
}


def use_book_style() -> None:
    """Seaborn's whitegrid; 11 pt text, so a 6-inch figure shown at page width stays above 9 pt."""
    sns.set_theme(style="whitegrid", context="notebook", font_scale=1.0)
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "savefig.bbox": "tight",
                         "font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11,
                         "xtick.labelsize": SMALLEST_FONT_PT, "ytick.labelsize": SMALLEST_FONT_PT,
                         "legend.fontsize": SMALLEST_FONT_PT})


def modality_palette(modalities: Sequence[str]) -> dict[str, str]:
    """Colours for ``modalities``; a name without a fixed colour gets one from seaborn's palette."""
    fallback = iter(sns.color_palette("Set2", len(modalities)).as_hex())
    return {m: MODALITY_COLORS.get(m) or next(fallback) for m in modalities}


def method_palette(methods: Sequence[str]) -> dict[str, str]:
    """Colours for ``methods``; a name without a fixed colour gets one from seaborn's palette."""
    fallback = iter(sns.color_palette("tab20", len(methods)).as_hex())
    return {m: METHOD_COLORS.get(m) or next(fallback) for m in methods}


def save_figure(fig: plt.Figure, path: str | Path) -> Path:
    """Save ``fig`` as PNG (150 dpi), creating the folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    return path


def legend_by_name(ax: plt.Axes, **options) -> None:
    """``ax``'s legend (matplotlib's ``legend(**options)``) with each method id among its labels
    shown by the method's name (:func:`mmlib.methods.display_name`), as the book's tables show it."""
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, [display_name(label) for label in labels], **options)


def ticks_by_name(ax: plt.Axes, axis: str = "x") -> None:
    """``ax``'s tick labels on ``axis`` (``"x"`` or ``"y"``) with each method id shown by the
    method's name (:func:`mmlib.methods.display_name`), as :func:`legend_by_name` does for legends:
    for a categorical axis of method ids (seaborn's ``x="method"``). Call it before styling the
    labels, which it replaces."""
    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    target = ax.xaxis if axis == "x" else ax.yaxis
    labels = [display_name(label.get_text()) for label in target.get_ticklabels()]
    target.set_ticks(target.get_ticklocs(), labels)
