"""Plots of evaluation figures (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from training.job import Evaluation

__all__ = ["plot_metrics_at_k"]

_PANELS = ("ndcg", "recall", "hit_rate", "revenue")


def plot_metrics_at_k(evaluation: Evaluation, ks: Sequence[int], path: Path, model_name: str) -> Path:
    """Draw the model against the popularity baseline at every k, one panel per metric."""
    fig, axes = plt.subplots(1, len(_PANELS), figsize=(4 * len(_PANELS), 3.4), constrained_layout=True)
    for ax, metric in zip(axes, _PANELS, strict=True):
        names = [f"{metric}_at_{k}" for k in ks]
        ax.plot(ks, [evaluation.model.get(n, float("nan")) for n in names], marker="o", label=model_name)
        ax.plot(ks, [evaluation.baseline.get(n, float("nan")) for n in names], marker="s", label="popular")
        ax.set_title(f"{metric}@k")
        ax.set_xlabel("k")
        ax.set_xticks(list(ks))
        ax.grid(alpha=0.3)
    axes[0].legend()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
