"""Errors of the training floor that the command line turns into one-line messages (exit code 2).

The tree (with the features floor's, which the command line also reports in one line)::

    ValueError
    ├── OptionError           a command-line value cannot be used (training.errors)
    ├── ModelError            a model cannot be built, fitted or loaded (raised by training.models)
    └── DataError             the data, or a value given to read it (features.errors)
    RuntimeError
    ├── TrackingError         MLflow refused or could not do what was asked (training.errors)
    └── EngineError           the Spark engine cannot start: no pyspark, no Java, no master

``training.console.one_line_errors`` catches exactly these (and OSError: a file that cannot be
opened); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["EngineError", "ModelError", "OptionError", "TrackingError"]


class EngineError(RuntimeError):
    """The Spark engine cannot start: pyspark or a Java runtime is missing, or the master does not answer."""


class TrackingError(RuntimeError):
    """MLflow refused or could not do what was asked."""


class ModelError(ValueError):
    """A model cannot be built, fitted or loaded as asked (raised by training.models)."""


class OptionError(ValueError):
    """A command-line value cannot be used; the message names the option and the value."""
