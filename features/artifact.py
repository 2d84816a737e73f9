"""The model artifact: the one contract between training and the service.

An artifact is a directory::

    manifest.json      the typed manifest (``features.manifest``): schema_version, model (kind,
                       params), weights, crosssell, trained_at, counts, a sha256 per file, and the
                       record of the run (data fingerprint, split, metrics, versions)
    users.npy          user ids (numpy unicode), row order of history and user factors
    items.npy          item ids (numpy unicode), column order of every item array
    history.npz        users x items confidence (scipy CSR): what each user already has
    items.parquet      item metadata aligned to items.npy: name, category, price, cost, in_stock
    popularity.npy     distinct users per item (float32)
    copurchase.npz     items x items co-purchase counts; copurchase_items.npy per-item order counts
    coview.npz         the same over browse sessions (optional); coview_items.npy
    orders.npz         orders x items, binary (scipy CSR): the baskets behind marketers' bundles of 3+
    trend.npz          items x days purchase and cart counts of the last days (trending items)
    dismissed.npz      users x items, True where the shopper dismissed the item (never shown to them)
    kpis.json          the training data's KPIs per week and per month (``features.kpis``)
    reorder.npz        per customer and item: orders, first and last day (``features.reorder``)
    model/             the model's own arrays and model.json (written by training.models)
    cart/              the cart model's arrays and cart.json (written by training.models.cart)

Nothing is pickled: arrays load with ``allow_pickle=False``. ``load_artifact`` checks the schema
version, that the files on disk are exactly those the manifest lists (no name outside the
directory), every file's checksum, and every shape, and raises ``ArtifactError`` saying which file
is wrong. ``sign_artifact`` adds ``signature`` to the manifest: ``hmac-sha256:`` + HMAC-SHA256 under
a shared key of the manifest's canonical JSON (sorted keys, no spaces, without ``signature``); as
the manifest holds every file's sha256, that signs the whole artifact. Given the key,
``load_artifact`` refuses an artifact whose signature is missing or wrong.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.association import Associations
from features.errors import ArtifactError
from features.ids import IdIndex
from features.manifest import SCHEMA_VERSION, Manifest
from features.reorder import ReorderHistory
from features.trending import TrendCounts

__all__ = [
    "CART_DIR",
    "MLFLOW_ARTIFACT_KEY",
    "SCHEMA_VERSION",
    "SIGNING_KEY_VARIABLES",
    "ModelArtifact",
    "file_sha256",
    "inside",
    "load_artifact",
    "read_arrays",
    "read_csr",
    "save_artifact",
    "sign_artifact",
    "write_arrays",
]

logger = logging.getLogger(__name__)

#: Where training and the service read the signing key: the first set wins (the second is its name
#: before the artifact was renamed, still honoured so that an upgrade never turns signing off).
SIGNING_KEY_VARIABLES = ("ORDERLIFT_ARTIFACT_SIGNING_KEY", "ORDERLIFT_BUNDLE_SIGNING_KEY")
MODEL_DIR = "model"
CART_DIR = "cart"
#: A registered version is an MLflow Model holding the artifact at ``artifacts/<this>`` (training.pyfunc).
MLFLOW_ARTIFACT_KEY = "orderlift"
SIGNATURE = "signature"


@dataclass(frozen=True)
class ModelArtifact:
    """Everything the service needs besides the model objects."""

    path: Path
    manifest: Manifest
    users: IdIndex
    items: IdIndex
    history: sp.csr_matrix
    item_meta: pd.DataFrame
    popularity: np.ndarray
    copurchase: Associations
    coview: Associations | None
    orders: sp.csr_matrix
    trend: TrendCounts | None = None
    dismissed: sp.csr_matrix | None = None
    #: The training data's KPI series: {"week": ..., "month": ...} (``features.kpis``); None if older.
    kpis: dict[str, Any] | None = None
    #: What each customer bought and when, for buy-again lists; None in older artifacts.
    reorder: ReorderHistory | None = None

    @property
    def model_dir(self) -> Path:
        """Return the directory of the model's own files."""
        return self.path / MODEL_DIR

    @property
    def cart_dir(self) -> Path:
        """Return the directory of the cart model's own files."""
        return self.path / CART_DIR


def file_sha256(path: Path) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_artifact(
    directory: Path,
    *,
    manifest: Manifest,
    users: IdIndex,
    items: IdIndex,
    history: sp.csr_matrix,
    item_meta: pd.DataFrame,
    popularity: np.ndarray,
    copurchase: Associations,
    coview: Associations | None,
    orders: sp.csr_matrix,
    trend: TrendCounts,
    dismissed: sp.csr_matrix,
    kpis: Mapping[str, Any],
    reorder: ReorderHistory,
    write_model: Callable[[Path], None],
    write_cart: Callable[[Path], None],
) -> Manifest:
    """Write an artifact into a temporary directory, then move it into place; return its manifest."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        users.save(staging / "users.npy")
        items.save(staging / "items.npy")
        sp.save_npz(staging / "history.npz", sp.csr_matrix(history, dtype=np.float32), compressed=False)
        meta = item_meta[["name", "category", "price", "cost", "in_stock"]].reset_index(drop=True)
        meta.insert(0, "item_id", items.ids.astype(object))
        meta.to_parquet(staging / "items.parquet", index=False)
        np.save(staging / "popularity.npy", np.asarray(popularity, dtype=np.float32), allow_pickle=False)
        stats = {"copurchase": copurchase, "coview": coview}
        for name, assoc in stats.items():
            if assoc is not None:
                sp.save_npz(staging / f"{name}.npz", assoc.pair_counts, compressed=False)
                np.save(staging / f"{name}_items.npy", assoc.item_counts, allow_pickle=False)
        sp.save_npz(staging / "orders.npz", sp.csr_matrix(orders, dtype=np.float32), compressed=False)
        sp.save_npz(staging / "trend.npz", sp.csr_matrix(trend.counts, dtype=np.float32), compressed=False)
        sp.save_npz(staging / "dismissed.npz", sp.csr_matrix(dismissed, dtype=np.float32), compressed=False)
        (staging / "kpis.json").write_text(json.dumps(kpis, allow_nan=False))
        reorder.save(staging / "reorder.npz")
        write_model(staging / MODEL_DIR)
        write_cart(staging / CART_DIR)
        files = {
            str(p.relative_to(staging)): file_sha256(p) for p in sorted(staging.rglob("*")) if p.is_file()
        }
        manifest = replace(
            manifest,
            schema_version=SCHEMA_VERSION,
            artifact_id=hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16],
            counts={"users": len(users), "items": len(items), "history_nnz": int(history.nnz)},
            baskets={n: (a.n_baskets if a is not None else None) for n, a in stats.items()},
            files=files,
            trend_first_day=trend.first_day,
        )
        (staging / "manifest.json").write_text(json.dumps(manifest.to_json(), indent=2, default=str))
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("wrote the model artifact %s (%d users, %d items)", directory, len(users), len(items))
    return manifest


def _manifest(directory: Path) -> dict[str, Any]:
    """Return the manifest's JSON object as written (``Manifest.parse`` checks its fields)."""
    path = directory / "manifest.json"
    if not directory.is_dir():
        raise ArtifactError(f"{directory}: no such artifact directory")
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ArtifactError(f"{path}: missing; is {directory} a model artifact?") from exc
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{path}: not a JSON object")
    return manifest


def read_csr(path: Path) -> sp.csr_matrix:
    """Read a scipy sparse file and check it whole: a crafted file must never reach compiled code.

    ``check_format(full_check=True)`` proves ``indptr`` monotone and every index within the shape;
    values must be finite. Raises ValueError naming the problem.
    """
    matrix = sp.load_npz(path).tocsr()
    matrix.check_format(full_check=True)
    if matrix.nnz and not np.isfinite(matrix.data).all():
        raise ValueError("it holds non-finite values")
    return matrix


def inside(directory: Path, name: str) -> Path:
    """Return ``directory / name``, refusing a name that is absolute or climbs out (``..``)."""
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise ArtifactError(f"{directory}: the file name {name!r} points outside the artifact")
    return directory / relative


def write_arrays(directory: Path, arrays: Mapping[str, np.ndarray | sp.spmatrix]) -> dict[str, str]:
    """Write one ``.npy`` (dense) or ``.npz`` (sparse CSR) file per array; return each one's file name."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, value in arrays.items():
        if sp.issparse(value):
            files[name] = f"{name}.npz"
            sp.save_npz(directory / files[name], sp.csr_matrix(value), compressed=False)
        else:
            files[name] = f"{name}.npy"
            np.save(directory / files[name], np.asarray(value), allow_pickle=False)
    return files


def read_arrays(directory: Path, files: Mapping[str, str]) -> dict[str, np.ndarray | sp.csr_matrix]:
    """Read arrays written by ``write_arrays`` (sparse ones checked whole); never unpickle."""
    out: dict[str, np.ndarray | sp.csr_matrix] = {}
    for name, file in files.items():
        path = inside(directory, str(file))
        out[name] = read_csr(path) if path.suffix == ".npz" else np.load(path, allow_pickle=False)
    return out


def _signature(manifest: dict[str, Any], key: str) -> str:
    body = {k: v for k, v in manifest.items() if k != SIGNATURE}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
    return "hmac-sha256:" + hmac.new(key.encode(), canonical, hashlib.sha256).hexdigest()


def sign_artifact(directory: Path, key: str) -> None:
    """Sign a written artifact's manifest (and through its checksums, every file) with ``key``."""
    path = Path(directory) / "manifest.json"
    manifest = _manifest(Path(directory))
    Manifest.parse(manifest, path)  # only a readable manifest is signed
    manifest[SIGNATURE] = _signature(manifest, key)
    staging = path.with_name(".manifest.json.tmp")
    staging.write_text(json.dumps(manifest, indent=2, default=str))
    staging.replace(path)


def _check_files(directory: Path, files: Mapping[str, str], verify: bool) -> None:
    """Refuse an artifact whose files are not exactly those its manifest lists, or whose checksums differ."""
    if not files:
        raise ArtifactError(f"{directory / 'manifest.json'}: lists no files, so nothing could be verified")
    listed = {inside(directory, str(name)): digest for name, digest in files.items()}
    present = {p for p in directory.rglob("*") if p.is_file() and p.name != "manifest.json"}
    if unlisted := sorted(str(p.relative_to(directory)) for p in present - set(listed)):
        raise ArtifactError(f"{directory}: files the manifest does not list: {unlisted[:5]}")
    for path, digest in listed.items():
        if not path.is_file():
            raise ArtifactError(f"{path}: missing from the artifact")
        if verify and file_sha256(path) != digest:
            raise ArtifactError(f"{path}: checksum mismatch; the file is corrupt or was changed")


def load_artifact(directory: Path, verify: bool = True, signing_key: str | None = None) -> ModelArtifact:
    """Read and check an artifact (its signature too, given the key); raise ArtifactError naming the fault."""
    directory = Path(directory)
    raw = _manifest(directory)
    manifest = Manifest.parse(raw, directory / "manifest.json")
    if signing_key:
        found = raw.get(SIGNATURE)
        if not isinstance(found, str) or not hmac.compare_digest(found, _signature(raw, signing_key)):
            why = "is not signed" if found is None else "has a signature that does not match"
            raise ArtifactError(f"{directory}: the artifact {why} (ORDERLIFT_ARTIFACT_SIGNING_KEY is set)")
    _check_files(directory, manifest.files, verify or bool(signing_key))
    users, items = IdIndex.load(directory / "users.npy"), IdIndex.load(directory / "items.npy")
    n_users, n_items = len(users), len(items)
    history = _load(directory / "history.npz", read_csr, (n_users, n_items))
    meta = _load(directory / "items.parquet", pd.read_parquet, None)
    missing = sorted({"item_id", "name", "category", "price", "in_stock"} - set(meta.columns))
    if missing or meta.shape[0] != n_items:
        why = f"columns {missing} are missing" if missing else f"{meta.shape[0]} rows, expected {n_items}"
        raise ArtifactError(f"{directory / 'items.parquet'}: {why}")
    if "cost" not in meta.columns:  # written before costs were known
        meta["cost"] = np.nan
    if not np.array_equal(meta["item_id"].to_numpy(dtype=str), items.ids):
        raise ArtifactError(f"{directory / 'items.parquet'}: item ids do not match items.npy")
    popularity = _load(directory / "popularity.npy", lambda p: np.load(p, allow_pickle=False), (n_items,))
    stats: dict[str, Associations | None] = {}
    for name in ("copurchase", "coview"):
        n_baskets = manifest.baskets.get(name)
        if n_baskets is None or not (directory / f"{name}.npz").is_file():
            stats[name] = None
            continue
        pairs = _load(directory / f"{name}.npz", read_csr, (n_items, n_items))
        counts = _load(directory / f"{name}_items.npy", lambda p: np.load(p, allow_pickle=False), (n_items,))
        stats[name] = Associations(pairs, counts, int(n_baskets))
    if stats["copurchase"] is None:
        raise ArtifactError(f"{directory}: copurchase statistics are missing")
    orders = _load(directory / "orders.npz", read_csr, None)
    if orders.shape[1] != n_items:
        raise ArtifactError(f"{directory / 'orders.npz'}: {orders.shape[1]} item columns, expected {n_items}")
    trend = None
    if manifest.trend_first_day is not None and "trend.npz" in manifest.files:  # absent in older artifacts
        counts = _load(directory / "trend.npz", read_csr, None)
        if counts.shape[0] != n_items:
            raise ArtifactError(f"{directory / 'trend.npz'}: {counts.shape[0]} item rows, expected {n_items}")
        trend = TrendCounts(counts, manifest.trend_first_day)
    dismissed = None
    if "dismissed.npz" in manifest.files:  # absent in older artifacts
        dismissed = _load(directory / "dismissed.npz", read_csr, (n_users, n_items))
    kpis = None
    if "kpis.json" in manifest.files:  # absent in older artifacts
        kpis = _load(directory / "kpis.json", lambda p: json.loads(p.read_text()), None)
    reorder = None
    if "reorder.npz" in manifest.files:  # absent in older artifacts
        reorder = _load(directory / "reorder.npz", lambda p: ReorderHistory.load(p, (n_users, n_items)), None)
    return ModelArtifact(
        directory,
        manifest,
        users,
        items,
        history,
        meta,
        popularity,
        stats["copurchase"],
        stats["coview"],
        orders,
        trend,
        dismissed,
        kpis,
        reorder,
    )


def _load(path: Path, reader: Callable[[Path], Any], shape: tuple[int, ...] | None) -> Any:
    """Read one file and check its shape."""
    try:
        value = reader(path)
    except Exception as exc:  # any reader failure means a corrupt file
        raise ArtifactError(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from exc
    if shape is not None and tuple(value.shape) != shape:
        raise ArtifactError(f"{path}: shape {tuple(value.shape)} does not match the artifact's {shape}")
    return value
