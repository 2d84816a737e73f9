"""Errors of the training floor that the command line turns into one-line messages."""

from __future__ import annotations

__all__ = ["TrackingError"]


class TrackingError(RuntimeError):
    """MLflow refused or could not do what was asked."""
