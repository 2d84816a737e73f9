"""Typed hyperparameters: every model kind declares its parameters as one frozen dataclass.

A kind's ``Params`` (a ``Hyperparameters`` subclass) lists each parameter as a typed field with
its default, so a model reads ``self.params.factors`` (an int) instead of casting a dict entry
at use. ``build`` takes
loose values (from the CLI, a sweep grid or a saved ``model.json``), refuses an unknown name,
and checks each value against its field's type, naming the parameter and the value on failure:
an int field takes an integral float (JSON and grids may write ``64.0``), a float field any
number, a bool field only a bool, a ``Literal`` field one of its values, and ``X | None`` also ``None``.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, Self, Union, get_args, get_origin, get_type_hints

from training.errors import ModelError

__all__ = ["Hyperparameters", "NoParams"]


@dataclass(frozen=True)
class Hyperparameters:
    """Base of every kind's hyperparameters."""

    @classmethod
    def build(cls, owner: str, given: Mapping[str, Any]) -> Self:
        """Return the parameters ``given`` over the defaults; raise ModelError naming a bad one."""
        hints = get_type_hints(cls)
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise ModelError(
                f"{owner} has no parameter {', '.join(unknown)}; known: {', '.join(sorted(names)) or 'none'}"
            )
        return cls(**{name: _checked(owner, name, hints[name], value) for name, value in given.items()})

    def as_dict(self) -> dict[str, Any]:
        """Return the parameters as a JSON-ready mapping (what manifests and MLflow record)."""
        return asdict(self)


@dataclass(frozen=True)
class NoParams(Hyperparameters):
    """A kind without hyperparameters."""


def _checked(owner: str, name: str, hint: Any, value: Any) -> Any:
    """Return ``value`` as the type ``hint`` says, or raise ModelError naming the parameter."""
    if get_origin(hint) is Literal:
        if value in get_args(hint):
            return value
        raise ModelError(
            f"{owner}: parameter {name} must be one of {', '.join(map(str, get_args(hint)))}, got {value!r}"
        )
    options = get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return None
    for kind in options:
        if kind is bool and isinstance(value, bool):
            return value
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if kind is int and number and float(value).is_integer():
            return int(value)
        if kind is float and number:
            return float(value)
    wanted = " or ".join("None" if k is type(None) else k.__name__ for k in options)
    raise ModelError(f"{owner}: parameter {name} must be {wanted}, got {value!r}")
