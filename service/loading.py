"""Resolve MODEL_URI (an artifact directory or models:/NAME@ALIAS) and load the artifact and its models."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from features.artifact import MLFLOW_ARTIFACT_KEY, ModelArtifact, load_artifact
from features.errors import ArtifactError
from features.manifest import Manifest
from training.models import ModelError, Recommender, load_model
from training.models.cart import CartModel, load_cart_model

__all__ = [
    "LoadError",
    "LoadedModel",
    "artifact_version",
    "current_version",
    "load",
    "load_errors",
    "redacted",
    "resolve",
]

logger = logging.getLogger(__name__)


class LoadError(RuntimeError):
    """The model could not be resolved or loaded; the message says why."""


@dataclass(frozen=True)
class LoadedModel:
    """A model artifact, its models, and the version the service reports."""

    artifact: ModelArtifact
    model: Recommender
    cart: CartModel
    version: str
    source: str
    load_seconds: float


def redacted(text: str, tracking_uri: str) -> str:
    """Return ``text`` with the credentials of ``tracking_uri`` (``user:password@``) masked."""
    netloc = urlsplit(tracking_uri).netloc
    if "@" not in netloc:
        return text
    return text.replace(netloc.rsplit("@", 1)[0] + "@", "***@")


@contextmanager
def load_errors(what: str, tracking_uri: str) -> Iterator[None]:
    """Turn any failure inside into a LoadError about ``what`` (credentials masked); LoadErrors pass."""
    try:
        yield
    except LoadError:
        raise
    except Exception as exc:
        raise LoadError(redacted(f"{what} ({type(exc).__name__}: {exc})", tracking_uri)) from exc


def registry_error(uri: str, tracking_uri: str, what: str) -> LoadError:
    """Return the LoadError of a registry that failed, without the credentials in its URI."""
    return LoadError(redacted(f"{uri}: the registry at {tracking_uri} {what}", tracking_uri))


def resolve(uri: str, tracking_uri: str, into: Path | None = None) -> tuple[Path, str | None]:
    """Return the local artifact directory for ``uri`` and its registry version (``NAME/N``) if any.

    A registry version is downloaded into ``into`` (the caller removes it) when given.
    """
    if not uri.startswith("models:/"):
        return Path(uri), None
    try:
        import mlflow
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException
    except ImportError as exc:  # pragma: no cover - mlflow-skinny is a dependency
        raise LoadError(f"{uri}: resolving models:/ URIs needs mlflow-skinny ({exc})") from exc
    reference = uri.removeprefix("models:/")
    name, _, version = reference.partition("/")
    name, _, alias = name.partition("@")
    try:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        client = MlflowClient()
        if alias:
            version = str(client.get_model_version_by_alias(name, alias).version)
        elif not version:
            raise LoadError(f"{uri}: give an alias (models:/NAME@ALIAS) or a version (models:/NAME/N)")
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version}", dst_path=None if into is None else str(into)
        )
    except MlflowException as exc:
        raise registry_error(uri, tracking_uri, f"cannot resolve it ({exc.message})") from exc
    except OSError as exc:
        raise registry_error(uri, tracking_uri, f"is unreachable ({exc})") from exc
    return inner_artifact(Path(local)), f"{name}/{version}"


def inner_artifact(directory: Path) -> Path:
    """Return the orderlift artifact of a registered version: inside its MLflow Model, or itself."""
    inside = directory / "artifacts" / MLFLOW_ARTIFACT_KEY
    return inside if (directory / "MLmodel").is_file() and inside.is_dir() else directory


def current_version(uri: str, tracking_uri: str) -> str:
    """Return the version ``uri`` points at now, without loading it."""
    if uri.startswith("models:/"):
        reference = uri.removeprefix("models:/")
        name, _, version = reference.partition("/")
        name, _, alias = name.partition("@")
        if not alias:
            return f"{name}/{version}"
        try:
            import mlflow
            from mlflow import MlflowClient
            from mlflow.exceptions import MlflowException

            mlflow.set_tracking_uri(tracking_uri)
            mlflow.set_registry_uri(tracking_uri)
            return f"{name}/{MlflowClient().get_model_version_by_alias(name, alias).version}"
        except MlflowException as exc:
            raise registry_error(uri, tracking_uri, f"cannot resolve it ({exc.message})") from exc
        except OSError as exc:
            raise registry_error(uri, tracking_uri, f"is unreachable ({exc})") from exc
    if not Path(uri).is_dir():
        raise LoadError(f"{uri}: no such artifact directory")
    try:
        manifest = json.loads((Path(uri) / "manifest.json").read_text())
        return artifact_version(Manifest.parse(manifest, Path(uri) / "manifest.json"))
    except (OSError, ValueError) as exc:  # ArtifactError is a ValueError
        raise LoadError(f"{uri}: cannot read its manifest ({exc})") from exc


def load(uri: str, tracking_uri: str, verify: bool = True, signing_key: str | None = None) -> LoadedModel:
    """Load an artifact and its models (refusing one not signed with ``signing_key``, when given)."""
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="orderlift-download-") as scratch:  # gone once loaded
        directory, registry_version = resolve(uri, tracking_uri, Path(scratch))
        try:
            artifact = load_artifact(directory, verify=verify, signing_key=signing_key)
            model = load_model(artifact.model_dir)
            cart = load_cart_model(artifact.cart_dir)
        except (ArtifactError, ModelError) as exc:
            raise LoadError(str(exc)) from exc
    n_items = len(artifact.items)
    if model.n_items != n_items:
        raise LoadError(f"{directory}: the model has {model.n_items} items, the artifact {n_items}")
    if cart.n_items != n_items:
        raise LoadError(f"{directory}: the cart model has {cart.n_items} items, the artifact {n_items}")
    version = registry_version or artifact_version(artifact.manifest)
    seconds = time.perf_counter() - began
    logger.info("loaded %s (%s) in %.2fs", uri, version, seconds)
    return LoadedModel(artifact, model, cart, version, uri, seconds)


def artifact_version(manifest: Manifest) -> str:
    """Return the version of an artifact served from a directory (not the registry): its id."""
    return f"artifact-{manifest.artifact_id}"
