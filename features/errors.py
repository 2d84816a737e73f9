"""Errors raised while reading and validating shop data."""

from __future__ import annotations

__all__ = ["BundleError", "DataError", "MappingError", "MissingColumnError", "UnreadableFileError"]


class DataError(ValueError):
    """Input data cannot be used; the message says what is wrong and where."""


class UnreadableFileError(DataError):
    """A file is missing, empty, truncated or not in a readable format."""


class MissingColumnError(DataError):
    """A required column, or one named by the mapping, is not in the file."""


class MappingError(DataError):
    """A column mapping or preset is malformed."""


class BundleError(DataError):
    """A model bundle is missing, corrupt or of an unsupported schema version."""
