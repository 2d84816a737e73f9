"""Plots of evaluation figures (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from training.job import Evaluation

__all__ = ["plot_cart_models", "plot_metrics_at_k"]

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


def plot_cart_models(evaluation: Evaluation, ks: Sequence[int], path: Path) -> Path | None:
    """Draw every cart model's test hit@k and revenue@k, the chosen one in bold; None without carts."""
    cart = evaluation.cart
    if cart is None:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    for ax, metric in zip(axes, ("hit", "revenue"), strict=True):
        for kind, figures in cart.test.items():
            values = [figures.get(f"crosssell_{metric}_at_{k}", float("nan")) for k in ks]
            chosen = kind == cart.chosen.kind
            ax.plot(
                ks,
                values,
                marker="o",
                linewidth=2.5 if chosen else 1.0,
                label=kind + (" *" if chosen else ""),
            )
        ax.set_title(f"cross-sell {metric}@k (test)")
        ax.set_xlabel("k")
        ax.set_xticks(list(ks))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
