"""Hyperparameter sweeps that never look at the test split.

The test split (the latest part of the timeline) is set aside first. A validation split is then
carved from the train period alone, by the same rule; every candidate is fitted on its earlier
part and scored on its later part, and the best by the chosen metric wins. Only the winner is
scored on the test split, once, beside the baseline; then it is refit on everything and written as
the model artifact.
"""

from __future__ import annotations

import itertools
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

__all__ = ["SweepResult", "Trial", "candidates", "parse_grid", "sweep"]


@dataclass(frozen=True)
class Trial:
    """One candidate's parameters and its validation figures."""

    params: dict[str, Any]
    metrics: dict[str, float]
    latest_event_seen: pd.Timestamp


@dataclass(frozen=True)
class SweepResult:
    """Every trial, the winner, and the winner's single evaluation on the test split."""

    trials: list[Trial]
    best: Trial
    metric: str
    test: Evaluation
    test_cutoff: pd.Timestamp | None


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
) -> SweepResult:
    """Choose params on a validation split of the train period; score the winner once on test."""
    if not config.evaluates:
        raise OptionError("a sweep needs a test split: give --holdout or --holdout-date, not 'none'")
    outer = split_events(dataset.events, config)
    inner = _validation_split(outer, config)
    if metric.startswith("crosssell"):
        raise OptionError(
            f"{metric} does not depend on the per-user model's params: every train run tunes the cart "
            "models itself; sweep a per-user metric such as ndcg_at_10"
        )
    options = candidates(grid, trials, config.seed)
    results: list[Trial] = []
    for number, params in enumerate(options, start=1):
        trial_config = replace(config, params={**config.params, **params})
        on_stage(f"trial {number}/{len(options)}: {params}")
        figures = evaluate_split(dataset, inner, trial_config, lambda _: None, None, carts=False)
        metrics = {**figures.model, **figures.crosssell}
        if metric not in metrics:
            raise OptionError(f"unknown metric {metric!r}; choose one of {', '.join(sorted(metrics))}")
        trial = Trial(dict(params), metrics, inner.test["timestamp"].max())
        results.append(trial)
        if on_trial is not None:
            on_trial(number, len(options), trial)
    best = max(results, key=lambda t: np.nan_to_num(t.metrics[metric], nan=-np.inf))
    on_stage(f"scoring the winner {best.params} once on the test split")
    test = evaluate_split(
        dataset, outer, replace(config, params={**config.params, **best.params}), on_stage, None
    )
    return SweepResult(results, best, metric, test, outer.cutoff)
