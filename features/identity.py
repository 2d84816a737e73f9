"""Pseudonymous customer ids: an e-mail address becomes a hash on the way in and is never kept.

The contract, shared with the storefront (which must send the same id): ``hash_id(value, salt)`` is
the first 24 hex digits of SHA-256 over ``salt + ":" + value.strip().lower()`` (no salt: over the
normalised value alone). The salt comes from ``ORDERLIFT_ID_SALT``; with one, an id cannot be
matched against a list of known addresses by anyone without it. ``orderlift hash-id`` prints the
id of each address it reads, for the storefront's side.
"""

from __future__ import annotations

import hashlib
import os

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["ID_SALT_VARIABLE", "hash_column", "hash_id", "id_salt"]

#: The environment variable holding the salt; never a command-line flag (it would show in ``ps``).
ID_SALT_VARIABLE = "ORDERLIFT_ID_SALT"
_DIGITS = 24


def id_salt() -> str:
    """Return the salt from the environment, or the empty string."""
    return os.environ.get(ID_SALT_VARIABLE, "")


def hash_id(value: str, salt: str = "") -> str:
    """Return the pseudonymous id of one value (an e-mail address, say)."""
    text = value.strip().lower()
    payload = f"{salt}:{text}" if salt else text
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:_DIGITS]


def hash_column(column: pa.ChunkedArray, salt: str = "") -> pa.ChunkedArray:
    """Replace every value by its hash, hashing each distinct value once; blanks become null."""
    chunks = []
    for chunk in column.chunks:
        arr = chunk if pa.types.is_dictionary(chunk.type) else pc.dictionary_encode(chunk.cast(pa.string()))
        words = arr.dictionary.cast(pa.string()).to_pylist()
        hashed = [hash_id(w, salt) if w is not None and w.strip() else None for w in words]
        chunks.append(pa.DictionaryArray.from_arrays(arr.indices, pa.array(hashed, pa.string())))
    return pa.chunked_array(chunks, type=pa.dictionary(pa.int32(), pa.string()))
