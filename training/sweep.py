"""Hyperparameter sweeps that never look at the test split.

The test split (the latest part of the timeline) is set aside first. A validation split is then
carved from the train period alone, by the same rule; every candidate is fitted on its earlier
part and scored on its later part, and the best by the chosen metric wins. Only the winner is
scored on the test split, once, beside the baseline; then it is refit on everything and written as
the model artifact.

With ``--model auto`` the candidates are every model family (``AUTO_GRID``): each family's
defaults first, so every family is tried, then the rest of each family's grid of key
hyperparameters, interleaved family by family, until the grid or the time budget runs out.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from features.dataset import Dataset
from features.split import Split
from training.errors import OptionError
from training.job import Evaluation, TrainConfig, evaluate_split, split_events
from training.options import parse_value

__all__ = [
    "AUTO",
    "AUTO_GRID",
    "SweepResult",
    "Trial",
    "auto_candidates",
    "candidates",
    "parse_grid",
    "sweep",
]

#: The model name that sweeps over every family.
AUTO = "auto"
#: What ``--model auto`` tries per family: its defaults, then this grid of its key hyperparameters.
AUTO_GRID: dict[str, dict[str, list[Any]]] = {
    "popular": {},
    "cosine": {"neighbours": [20, 100, 300]},
    "bm25": {"neighbours": [20, 100, 300]},
    "tfidf": {"neighbours": [20, 100, 300]},
    "ease": {"regularization": [50.0, 250.0, 1000.0]},
    "als": {"factors": [32, 64, 128], "regularization": [0.01, 0.1], "alpha": [1.0, 2.0, 5.0]},
    "bpr": {"factors": [64, 128], "learning_rate": [0.01, 0.05]},
    "lmf": {"factors": [30, 64], "learning_rate": [0.5, 1.0]},
}


@dataclass(frozen=True)
class Trial:
    """One candidate's parameters and its validation figures."""

    params: dict[str, Any]
    metrics: dict[str, float]
    latest_event_seen: pd.Timestamp
    model: str = ""


@dataclass(frozen=True)
class SweepResult:
    """Every trial, the winner, and the winner's single evaluation on the test split."""

    trials: list[Trial]
    best: Trial
    metric: str
    test: Evaluation
    test_cutoff: pd.Timestamp | None
    #: Candidates not tried because the time budget ran out.
    skipped: int = 0

    def leaderboard(self) -> list[Trial]:
        """Return the trials best first by the sweep's metric."""
        return sorted(self.trials, key=lambda t: -np.nan_to_num(t.metrics[self.metric], nan=-np.inf))


def parse_grid(specs: Sequence[str]) -> dict[str, list[Any]]:
    """Parse ``factors=32,64,128`` style entries into name -> candidate values."""
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        for part in spec.split():
            name, sep, values = part.partition("=")
            if not sep or not name or not values.strip(","):
                raise OptionError(f"--grid entry {part!r} is not of the form name=v1,v2,...")
            grid[name] = [parse_value(v) for v in values.split(",") if v]
    if not grid:
        raise OptionError("give at least one --grid name=v1,v2,...")
    return grid


def candidates(grid: dict[str, list[Any]], trials: int | None, seed: int) -> list[dict[str, Any]]:
    """Return the full grid, or ``trials`` distinct random picks from it."""
    names = sorted(grid)
    full = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(grid[n] for n in names))]
    if trials is None or trials >= len(full):
        return full
    picks = np.random.default_rng(seed).choice(len(full), size=trials, replace=False)
    return [full[i] for i in sorted(picks)]


def auto_candidates(seed: int) -> list[tuple[str, dict[str, Any]]]:
    """Return (model, params): every family's defaults, then the rest of the grids interleaved."""
    firsts: list[tuple[str, dict[str, Any]]] = [(kind, {}) for kind in AUTO_GRID]
    from training.models import create_model

    rng = np.random.default_rng(seed)
    rests = []
    for kind, grid in AUTO_GRID.items():
        defaults = create_model(kind).params.as_dict()
        points = [
            p for p in (candidates(grid, None, seed) if grid else []) if p != {k: defaults[k] for k in p}
        ]
        rests.append([(kind, points[i]) for i in rng.permutation(len(points))])
    interleaved = [c for layer in itertools.zip_longest(*rests) for c in layer if c is not None]
    return firsts + interleaved


def _validation_split(split: Split, config: TrainConfig) -> Split:
    """Carve a validation split from the train period only."""
    if config.holdout_date is not None:  # a date split: validate on the same share of the train period
        span = split.train["timestamp"].max() - split.train["timestamp"].min()
        test_span = split.test["timestamp"].max() - split.test["timestamp"].min()
        share = float(np.clip(test_span / span if span.total_seconds() else 0.2, 0.05, 0.5))
        return split_events(split.train, replace(config, holdout=share, holdout_date=None))
    return split_events(split.train, config)


def sweep(
    dataset: Dataset,
    config: TrainConfig,
    grid: dict[str, list[Any]],
    metric: str = "ndcg_at_10",
    trials: int | None = None,
    on_trial: Callable[[int, int, Trial], None] | None = None,
    on_stage: Callable[[str], None] = lambda _: None,
    budget_minutes: float | None = None,
) -> SweepResult:
    """Choose a model and params on a validation split of the train period; score the winner once.

    ``config.model == AUTO`` searches every family (``auto_candidates``; ``grid`` is ignored);
    ``budget_minutes`` stops starting trials once spent, but never before each family had one.
    """
    if not config.evaluates:
        raise OptionError("a sweep needs a test split: give --holdout or --holdout-date, not 'none'")
    outer = split_events(dataset.events, config)
    inner = _validation_split(outer, config)
    if metric.startswith("crosssell"):
        raise OptionError(
            f"{metric} does not depend on the per-user model's params: every train run tunes the cart "
            "models itself; sweep a per-user metric such as ndcg_at_10"
        )
    auto = config.model == AUTO

    def params_of(params: dict[str, Any]) -> dict[str, Any]:
        """Return a trial's full params: each family from its own defaults under ``auto``."""
        return dict(params) if auto else {**config.params, **params}

    if auto:
        options = auto_candidates(config.seed)
        if trials is not None:
            options = options[: max(trials, len(AUTO_GRID))]
    else:
        options = [(config.model, p) for p in candidates(grid, trials, config.seed)]
    deadline = None if budget_minutes is None else time.monotonic() + 60 * budget_minutes
    must = len(AUTO_GRID) if auto else 1
    results: list[Trial] = []
    for number, (kind, params) in enumerate(options, start=1):
        if deadline is not None and len(results) >= must and time.monotonic() > deadline:
            on_stage(f"time budget of {budget_minutes} minutes spent after {len(results)} trials")
            break
        trial_config = replace(config, model=kind, params=params_of(params))
        on_stage(f"trial {number}/{len(options)}: {kind} {params}")
        figures = evaluate_split(dataset, inner, trial_config, lambda _: None, None, carts=False)
        metrics = {**figures.model, **figures.crosssell}
        if metric not in metrics:
            raise OptionError(f"unknown metric {metric!r}; choose one of {', '.join(sorted(metrics))}")
        trial = Trial(dict(params), metrics, inner.test["timestamp"].max(), kind)
        results.append(trial)
        if on_trial is not None:
            on_trial(number, len(options), trial)
    best = max(results, key=lambda t: np.nan_to_num(t.metrics[metric], nan=-np.inf))
    on_stage(f"scoring the winner {best.model} {best.params} once on the test split")
    winner = replace(config, model=best.model, params=params_of(best.params))
    test = evaluate_split(dataset, outer, winner, on_stage, None)
    return SweepResult(results, best, metric, test, outer.cutoff, len(options) - len(results))
