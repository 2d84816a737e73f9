"""MLflow: the one place on the training floor that imports it. Log runs, register, alias, compare."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from training.errors import TrackingError

__all__ = [
    "DEFAULT_TRACKING_URI",
    "LoggedRun",
    "TrackingError",
    "compare_runs",
    "configure",
    "log_run",
    "promote",
]


DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
ARTIFACT_PATH = "model"  # where a run keeps its model artifact (runs before 2026-12 used "bundle")
_PARAM_LIMIT = 6000


@dataclass(frozen=True)
class LoggedRun:
    """Where a run landed."""

    run_id: str
    experiment_id: str
    model_name: str | None
    model_version: str | None
    alias: str | None


def configure(tracking_uri: str | None = None) -> str:
    """Point MLflow at ``tracking_uri``, else $MLFLOW_TRACKING_URI, else the local SQLite file."""
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no download bars in the output
    for noisy in ("alembic", "mlflow.store.db.utils", "mlflow.tracking.fluent"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def _flatten(prefix: str, value: Any) -> dict[str, str]:
    """Flatten nested params to dotted keys with string values MLflow accepts."""
    if isinstance(value, Mapping):
        out: dict[str, str] = {}
        for key, item in value.items():
            out |= _flatten(f"{prefix}.{key}" if prefix else str(key), item)
        return out
    text = json.dumps(value, default=str) if isinstance(value, list | tuple) else str(value)
    return {prefix: text[:_PARAM_LIMIT]}


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def log_run(
    *,
    experiment: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    epochs: list[tuple[int, float | None]],
    tags: Mapping[str, str],
    artifact: Path,
    artifacts: Mapping[str, Path],
    register: str | None = None,
    alias: str | None = None,
    run_name: str | None = None,
    children: Sequence[tuple[str, Mapping[str, Any], Mapping[str, float]]] = (),
) -> LoggedRun:
    """Log params, per-epoch loss, metrics, tags, artifacts and nested child runs; register and alias."""
    mlflow.set_experiment(experiment)
    commit = _git_commit()
    all_tags = {**tags, **({"git_commit": commit} if commit else {})}
    with mlflow.start_run(run_name=run_name, tags=all_tags) as run:
        mlflow.log_params(_flatten("", params))
        for epoch, value in epochs:
            if value is not None:
                mlflow.log_metric("train_loss", value, step=epoch)
        finite = {k: float(v) for k, v in metrics.items() if v == v}  # NaN cannot be compared
        mlflow.log_metrics(finite)
        _log_model(artifact)
        for folder, path in artifacts.items():
            mlflow.log_artifact(str(path), artifact_path=folder)
        for name, child_params, child_metrics in children:
            with mlflow.start_run(run_name=name, nested=True, tags={"role": "sweep_trial"}):
                mlflow.log_params(_flatten("", child_params))
                mlflow.log_metrics({k: float(v) for k, v in child_metrics.items() if v == v})
        run_id = run.info.run_id
        experiment_id = run.info.experiment_id
    version = None
    if register:
        version = register_artifact(run_id, register, alias)
    return LoggedRun(run_id, experiment_id, register, version, alias if register else None)


def _requirements() -> list[str]:
    """Return the pinned packages the MLflow Model needs to load and score."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("mlflow", "numpy", "scipy", "pandas", "pyarrow", "implicit", "numba", "threadpoolctl"):
        try:
            found.append(f"{package}=={version(package)}")
        except PackageNotFoundError:  # pragma: no cover - all are dependencies
            found.append(package)
    return found


def _link_or_copy(source: str, target: str) -> None:
    """Hard-link a file where the filesystem allows it, else copy it."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _log_model(artifact: Path) -> None:
    """Log the artifact as an MLflow Model (pyfunc from code, ``training/pyfunc.py``) under ``model/``.

    The artifact sits unchanged inside it (``artifacts/orderlift``), beside ``MLmodel``, the
    signature, an input example and the ``features`` and ``training`` code the model runs.
    """
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, Schema

    from features.artifact import MLFLOW_ARTIFACT_KEY

    code = Path(__file__).resolve().parent
    users = np.load(artifact / "users.npy", allow_pickle=False)
    signature = ModelSignature(
        inputs=Schema([ColSpec("string", "user_id"), ColSpec("long", "n", required=False)]),
        outputs=Schema([ColSpec(Array("string"), "item_ids"), ColSpec(Array("double"), "scores")]),
    )
    with tempfile.TemporaryDirectory(prefix="orderlift-mlflow-model-") as scratch:
        named = Path(scratch) / MLFLOW_ARTIFACT_KEY  # MLflow keeps an artifact under its own name
        shutil.copytree(artifact, named, copy_function=_link_or_copy)
        mlflow.pyfunc.save_model(
            path=str(Path(scratch) / ARTIFACT_PATH),
            python_model=str(code / "pyfunc.py"),
            artifacts={MLFLOW_ARTIFACT_KEY: str(named)},
            code_paths=[str(code.parent / "features"), str(code)],
            signature=signature,
            input_example=pd.DataFrame({"user_id": [str(u) for u in users[:2]]}),
            pip_requirements=_requirements(),
        )
        mlflow.log_artifacts(str(Path(scratch) / ARTIFACT_PATH), artifact_path=ARTIFACT_PATH)


def register_artifact(run_id: str, name: str, alias: str | None) -> str:
    """Register the run's artifact directory as a new version of ``name`` and point ``alias`` at it.

    The run's ``model/`` is an MLflow Model holding the artifact (``_log_model``); the version is
    created from that location directly, so registering needs no model loading.
    """
    client = MlflowClient()
    try:
        try:
            client.create_registered_model(name)
        except MlflowException as exc:
            if "already exists" not in str(exc.message).lower():
                raise
        source = f"{client.get_run(run_id).info.artifact_uri}/{ARTIFACT_PATH}"
        version = client.create_model_version(name, source=source, run_id=run_id)
        if alias:
            client.set_registered_model_alias(name, alias, version.version)
    except MlflowException as exc:
        raise TrackingError(f"cannot register run {run_id} as {name!r}: {exc.message}") from exc
    return str(version.version)


def promote(
    name: str,
    alias: str,
    version: str | None = None,
    run_id: str | None = None,
    from_alias: str | None = None,
) -> str:
    """Point ``alias`` of model ``name`` at a version: given, made by a run, or behind another alias."""
    client = MlflowClient()
    try:
        if version is None and from_alias is not None:
            version = str(client.get_model_version_by_alias(name, from_alias).version)
        if version is None:
            if run_id is None:
                raise TrackingError("give --version, --run or --from-alias")
            found = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
            if not found:
                raise TrackingError(f"no version of model {name!r} was registered from run {run_id}")
            version = str(max(int(v.version) for v in found))
        client.get_model_version(name, version)
        client.set_registered_model_alias(name, alias, version)
    except MlflowException as exc:
        raise TrackingError(f"cannot set {name}@{alias}: {exc.message}") from exc
    return version


def compare_runs(experiment: str, metric: str, max_results: int = 50) -> pd.DataFrame:
    """Return the experiment's finished runs ranked by ``metric``, best first, with key params."""
    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        raise TrackingError(f"no experiment named {experiment!r}")
    runs = mlflow.search_runs(
        experiment_ids=[found.experiment_id],
        order_by=[f"metrics.{metric} DESC"],
        max_results=max_results,
        output_format="pandas",
    )
    if not isinstance(runs, pd.DataFrame) or runs.empty:
        return pd.DataFrame()
    if "tags.role" in runs.columns:  # sweep trials carry validation figures: not comparable
        runs = runs[runs["tags.role"] != "sweep_trial"]
    column = f"metrics.{metric}"
    if column not in runs.columns:
        known = sorted(
            c.removeprefix("metrics.")
            for c in runs.columns
            if c.startswith("metrics.") and not c.startswith("metrics.baseline_")
        )
        raise TrackingError(f"no runs logged metric {metric!r}; metrics are: {', '.join(known[:30])}")
    keep = [
        "run_id",
        "tags.data_fingerprint",
        "start_time",
        "tags.mlflow.runName",
        "params.model",
        column,
        f"metrics.baseline_{metric}",
    ]
    keep += sorted(c for c in runs.columns if c.startswith("params.params."))
    return runs[[c for c in keep if c in runs.columns]].dropna(subset=[column])


def temporary_artifact(name: str, payload: Mapping[str, Any]) -> Path:
    """Write a JSON payload to a temporary file for logging as an artifact."""
    path = Path(tempfile.mkdtemp(prefix="orderlift-")) / name
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path
