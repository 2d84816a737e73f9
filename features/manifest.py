"""The model artifact's manifest as a typed record: what training wrote, checked when it is read.

``manifest.json`` (schema version 2) is written by ``training.job.run_training``; ``Manifest.parse``
turns it into this record and names the first field that is missing or of the wrong type
(``BundleError``), so the service reads trained settings as attributes, never with
``.get(...).get(...)``. The fields the service uses:

- ``model``: the recommender's kind, parameters and how it folds in new histories;
- ``weights``: the event weights training built the confidence matrix with; live history is
  weighted with them too (``live_weights``: clicks as views), so live events count as trained;
- ``crosssell``: the cart model training chose on validation: kind, parameters, the price exponent
  of expected order value, the calibration of its scores and the blend for known customers;
- ``bundle_id``, ``counts``, ``baskets``, ``files`` (sha256 per file) and ``signature``.

Everything else training records (data, split, metrics, versions, sweep) stays in ``raw``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from features.errors import BundleError
from features.schema import DEFAULT_WEIGHTS, TRAINS_AS

__all__ = ["CartSpec", "Manifest", "ModelSpec"]


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
    params: dict[str, Any]
    price_exponent: float = 0.0
    calibration: tuple[float, float] | None = None
    blend: dict[str, float] = field(default_factory=dict)
    chosen_on: str = "default"


@dataclass(frozen=True)
class Manifest:
    """A bundle's manifest, typed; ``raw`` is the whole JSON object as written."""

    schema_version: int
    bundle_id: str
    model: ModelSpec
    crosssell: CartSpec
    weights: dict[str, float]
    counts: dict[str, int]
    baskets: dict[str, int | None]
    files: dict[str, str]
    trained_at: str | None
    signature: str | None
    raw: dict[str, Any]

    @property
    def live_weights(self) -> dict[str, float]:
        """Return the weight of each live event type that trains: the trained weight of what it is."""
        return {live.value: self.weights[trained.value] for live, trained in TRAINS_AS.items()}

    @property
    def data_fingerprint(self) -> str | None:
        """Return the fingerprint of the data the model was trained on."""
        data = self.raw.get("data")
        return data.get("fingerprint") if isinstance(data, dict) else None

    @classmethod
    def parse(cls, raw: Mapping[str, Any], path: Path) -> Manifest:
        """Check and type a manifest read from ``path``; raise BundleError naming the bad field."""
        take = _Reader(raw, path)
        model = take.mapping("model")
        cart = take.mapping("crosssell")
        weights = {**DEFAULT_WEIGHTS, **take.mapping("config", optional=True).get("weights", {})}
        calibration = cart.get("calibration")
        baskets = take.mapping("baskets", optional=True)
        return cls(
            schema_version=take.of("schema_version", int),
            bundle_id=take.of("bundle_id", str),
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
            weights={str(k): float(v) for k, v in weights.items()},
            counts={str(k): int(v) for k, v in take.mapping("counts", optional=True).items()},
            baskets={str(k): None if v is None else int(v) for k, v in baskets.items()},
            files={str(k): str(v) for k, v in take.mapping("files").items()},
            trained_at=None if raw.get("trained_at") is None else str(raw["trained_at"]),
            signature=None if raw.get("signature") is None else str(raw["signature"]),
            raw=dict(raw),
        )


def _typed(mapping: Mapping[str, Any], key: str, kind: type, path: Path, prefix: str = "") -> Any:
    value = mapping.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise BundleError(f"{path}: {prefix}{key} must be a {kind.__name__}, got {value!r}")
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
