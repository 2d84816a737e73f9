"""The model artifact's manifest: a typed, versioned record that training writes and the service reads.

``manifest.json`` is ``Manifest.to_json()``; ``Manifest.parse`` reads it back and names the first
field that is missing or of the wrong type (``ArtifactError``), so nobody reads it with
``.get(...).get(...)``. Every trained setting the service uses is a typed field:

- ``model``: the recommender's kind, its hyperparameters and how it folds in new histories;
- ``weights``: the event weights training built the confidence matrix with; live history is
  weighted with them too (``live_weights``: clicks as views), so live events count as trained;
- ``crosssell``: the cart model training chose on validation: kind, hyperparameters, the price
  exponent of expected order value, the calibration of its scores and the blend for known
  customers (``chosen_on`` says whether validation chose it or it is the default);
- ``trend_first_day``: the first day of the purchase and cart counts behind trending items;
- ``artifact_id`` (a digest of every file's sha256), ``counts``, ``baskets``, ``files`` (sha256 per
  file, which ``save_artifact`` fills in) and ``signature``.

What training records for people (data, config, split, metrics, versions, a sweep's trials) is
``record``, written beside the typed fields. Versions: 3 is this layout; 2 (``bundle_id``, the
weights under ``config``) still loads; 1 (no trained cart model) is refused with what to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from features.errors import ArtifactError
from features.schema import DEFAULT_WEIGHTS, TRAINS_AS

__all__ = ["SCHEMA_VERSION", "CartSpec", "Manifest", "ModelSpec"]

SCHEMA_VERSION = 3
_TYPED = {"schema_version", "artifact_id", "model", "crosssell", "weights", "trained_at", "counts",
          "baskets", "files", "signature", "trend_first_day"}  # fmt: skip


@dataclass(frozen=True)
class ModelSpec:
    """The recommender training fitted."""

    kind: str
    params: dict[str, Any]
    fold_in: str = "native"


@dataclass(frozen=True)
class CartSpec:
    """The cart model training chose for cross-sell, and how its scores are used."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    price_exponent: float = 0.0
    calibration: tuple[float, float] | None = None
    blend: dict[str, float] = field(default_factory=dict)
    chosen_on: str = "default"


@dataclass(frozen=True)
class Manifest:
    """A model artifact's manifest, typed."""

    model: ModelSpec
    crosssell: CartSpec
    weights: dict[str, float]
    trained_at: str | None = None
    record: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    artifact_id: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    baskets: dict[str, int | None] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    signature: str | None = None
    trend_first_day: int | None = None  # the first day of trend.npz (days since 1970-01-01, UTC)

    @property
    def live_weights(self) -> dict[str, float]:
        """Return the weight of each live event type that trains: the trained weight of what it is."""
        return {live.value: self.weights[trained.value] for live, trained in TRAINS_AS.items()}

    @property
    def data_fingerprint(self) -> str | None:
        """Return the fingerprint of the data the model was trained on."""
        data = self.record.get("data")
        return data.get("fingerprint") if isinstance(data, dict) else None

    def to_json(self) -> dict[str, Any]:
        """Return the JSON object ``manifest.json`` holds (the record's entries beside the typed ones)."""
        crosssell = asdict(self.crosssell)
        crosssell["calibration"] = (
            None if self.crosssell.calibration is None else list(self.crosssell.calibration)
        )
        out = {
            **self.record,
            "schema_version": self.schema_version,
            "artifact_id": self.artifact_id,
            "model": asdict(self.model),
            "crosssell": crosssell,
            "weights": dict(self.weights),
            "trained_at": self.trained_at,
            "counts": dict(self.counts),
            "baskets": dict(self.baskets),
            "files": dict(self.files),
            "trend_first_day": self.trend_first_day,
        }
        if self.signature is not None:
            out["signature"] = self.signature
        return out

    @classmethod
    def parse(cls, raw: Mapping[str, Any], path: Path) -> Manifest:
        """Check and type a manifest read from ``path``; raise ArtifactError naming the bad field."""
        version = raw.get("schema_version")
        if version not in (2, SCHEMA_VERSION):
            hint = (
                "; it predates trained cart models: retrain it with orderlift train" if version == 1 else ""
            )
            raise ArtifactError(
                f"{path}: schema version {version!r} is not supported (2 or {SCHEMA_VERSION}){hint}"
            )
        take = _Reader(raw, path)
        model, cart = take.mapping("model"), take.mapping("crosssell")
        if version == 2:  # the id was bundle_id and the weights sat in the config
            artifact_id = take.of("bundle_id", str)
            weights = take.mapping("config", optional=True).get("weights", {})
        else:
            artifact_id, weights = take.of("artifact_id", str), take.mapping("weights")
        calibration = cart.get("calibration")
        return cls(
            schema_version=version,
            artifact_id=artifact_id,
            model=ModelSpec(
                _typed(model, "kind", str, path, "model."),
                dict(_typed(model, "params", dict, path, "model.")),
                str(model.get("fold_in", "native")),
            ),
            crosssell=CartSpec(
                _typed(cart, "kind", str, path, "crosssell."),
                dict(_typed(cart, "params", dict, path, "crosssell.")),
                float(cart.get("price_exponent", 0.0)),
                None if calibration is None else (float(calibration[0]), float(calibration[1])),
                {str(k): float(v) for k, v in cart.get("blend", {}).items()},
                str(cart.get("chosen_on", "default")),
            ),
            weights={str(k): float(v) for k, v in {**DEFAULT_WEIGHTS, **weights}.items()},
            counts={str(k): int(v) for k, v in take.mapping("counts", optional=True).items()},
            baskets={str(k): None if v is None else int(v) for k, v in take.mapping("baskets", True).items()},
            files={str(k): str(v) for k, v in take.mapping("files").items()},
            trained_at=None if raw.get("trained_at") is None else str(raw["trained_at"]),
            signature=None if raw.get("signature") is None else str(raw["signature"]),
            trend_first_day=None if raw.get("trend_first_day") is None else int(raw["trend_first_day"]),
            record={k: v for k, v in raw.items() if k not in _TYPED and k != "bundle_id"},
        )


def _typed(mapping: Mapping[str, Any], key: str, kind: type, path: Path, prefix: str = "") -> Any:
    value = mapping.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise ArtifactError(f"{path}: {prefix}{key} must be a {kind.__name__}, got {value!r}")
    return value


@dataclass(frozen=True)
class _Reader:
    raw: Mapping[str, Any]
    path: Path

    def of(self, key: str, kind: type) -> Any:
        return _typed(self.raw, key, kind, self.path)

    def mapping(self, key: str, optional: bool = False) -> dict[str, Any]:
        if optional and self.raw.get(key) is None:
            return {}
        return dict(_typed(self.raw, key, dict, self.path))
