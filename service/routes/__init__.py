"""One router per module: storefront (users, items, cart, events, trending), marketers (bundles,
rules, experiments, the page), operators (admin, ops), and the docs.

``modules()`` finds every module here with a ``router``, in name order, so a new endpoint is a new
module (or a route in one) and the app factory includes it without being edited. A module whose
route reads its own body lists the body's models in ``BODY_SCHEMAS`` for the OpenAPI document.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

__all__ = ["modules"]


def modules() -> list[ModuleType]:
    """Return every route module of this package, in name order."""
    found = [importlib.import_module(f"{__name__}.{info.name}") for info in pkgutil.iter_modules(__path__)]
    return sorted((m for m in found if hasattr(m, "router")), key=lambda m: m.__name__)
