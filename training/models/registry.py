"""A family of model kinds by name (Gorse's backend registry): ``create`` builds one from its parameters."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Protocol, TypeVar

from training.errors import ModelError

__all__ = ["Registry"]


class _Kind(Protocol):
    kind: ClassVar[str]


M = TypeVar("M", bound=_Kind)


class Registry(dict[str, type[M]]):
    """Every kind of one family (models, cart models) by its ``kind`` name, in declaration order."""

    def __init__(self, family: str, classes: Iterable[type[M]]) -> None:
        super().__init__((cls.kind, cls) for cls in classes)
        self.family = family

    def create(self, kind: str, **params: Any) -> M:
        """Return an unfitted ``kind`` with ``params`` over its defaults; raise ModelError if unknown."""
        if kind not in self:
            raise ModelError(f"unknown {self.family} {kind!r}; choose one of {', '.join(self)}")
        return self[kind](**params)
