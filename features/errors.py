"""Errors of the features floor: what is wrong with the data, or with a value given to read it.

The tree::

    DataError (ValueError)
    ├── UnreadableFileError   a file is missing, empty, truncated or unreadable
    ├── MissingColumnError    a required or mapped column is not in the file
    ├── MappingError          a column mapping or preset is malformed
    ├── ArtifactError         a model artifact is missing, corrupt, unsigned or of another schema
    └── InvalidParameter      a value given to a features function is outside what it accepts

Everything else raised from here is a bug, and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "DataError",
    "InvalidParameter",
    "MappingError",
    "MissingColumnError",
    "UnreadableFileError",
]


class DataError(ValueError):
    """Input data cannot be used; the message says what is wrong and where."""


class UnreadableFileError(DataError):
    """A file is missing, empty, truncated or not in a readable format."""


class MissingColumnError(DataError):
    """A required column, or one named by the mapping, is not in the file."""


class MappingError(DataError):
    """A column mapping or preset is malformed."""


class ArtifactError(DataError):
    """A model artifact is missing, corrupt or of an unsupported schema version."""


class InvalidParameter(DataError):
    """A value given to a features function (a split, weights, a control) is outside its range."""
