"""The figure conventions the chapters share: one palette for modalities, one style, PNG at 150 dpi."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import seaborn as sns

# One colour per modality, everywhere in the book.
MODALITY_COLORS: dict[str, str] = {
    "audio": "#1b9e77", "visual": "#d95f02", "text": "#7570b3",
    "pix": "#e7298a", "fou": "#66a61e", "mor": "#e6ab02", "fac": "#a6761d", "kar": "#666666", "zer": "#1f78b4",
    "m0": "#1b9e77", "m1": "#d95f02", "m2": "#7570b3", "image": "#e7298a", "fused": "#222222",
}
METHOD_ORDER = ("sum", "concat", "ogm", "ogm_ge", "lfm", "crmt", "late_fusion", "mla", "ours", "ours_rownorm")


def use_book_style() -> None:
    sns.set_theme(style="whitegrid", context="notebook")
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "savefig.bbox": "tight"})


def modality_palette(modalities: Sequence[str]) -> dict[str, str]:
    """Colours for ``modalities``; a name without a fixed colour gets one from seaborn's palette."""
    fallback = iter(sns.color_palette("Set2", len(modalities)).as_hex())
    return {m: MODALITY_COLORS.get(m) or next(fallback) for m in modalities}


def save_figure(fig: plt.Figure, path: str | Path) -> Path:
    """Save ``fig`` as PNG (150 dpi), creating the folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    return path
