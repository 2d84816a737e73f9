"""A/B variants: which model URIs are served side by side, and which one a user lands in.

``ORDERLIFT_VARIANTS=production:90,candidate:10`` serves each alias of the registered model named
by ``MODEL_URI`` (``models:/NAME@ALIAS``); a user lands in a variant by a stable hash of their id
(``bucket``), anonymous requests in the first (the control).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from service.config import Settings
from service.loading import LoadError

__all__ = ["Variant", "bucket", "parse_variants"]


@dataclass(frozen=True)
class Variant:
    """A named share of traffic served by one model URI."""

    name: str
    weight: float
    uri: str


def parse_variants(settings: Settings) -> list[Variant]:
    """Return the configured variants; one (the MODEL_URI) when no split is set."""
    uri = settings.model_uri
    if not uri:
        raise LoadError("ORDERLIFT_MODEL_URI is not set (an artifact directory or models:/NAME@ALIAS)")
    base, _, alias = uri.partition("@")
    if not settings.variants:
        return [Variant(alias if uri.startswith("models:/") and alias else "default", 100.0, uri)]
    if not (uri.startswith("models:/") and alias):
        raise LoadError("ORDERLIFT_VARIANTS needs ORDERLIFT_MODEL_URI=models:/NAME@ALIAS")
    variants = []
    for part in settings.variants.split(","):
        name, sep, share = part.strip().partition(":")
        try:
            weight = float(share)
        except ValueError:
            weight = -1.0
        if not sep or not name or weight < 0:
            raise LoadError(
                f"ORDERLIFT_VARIANTS entry {part.strip()!r} is not alias:weight (e.g. candidate:10)"
            )
        variants.append(Variant(name, weight, f"{base}@{name}"))
    if sum(v.weight for v in variants) <= 0:
        raise LoadError("ORDERLIFT_VARIANTS weights add up to zero")
    return variants


def bucket(user_id: str) -> float:
    """Return a stable position in [0, 100) for a user."""
    digest = hashlib.sha256(user_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 / 100.0
