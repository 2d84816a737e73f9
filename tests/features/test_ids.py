"""IdIndex: sorted external ids <-> matrix positions, saved as plain numpy unicode arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.errors import ArtifactError
from features.ids import IdIndex


def test_from_values_sorts_and_deduplicates_regardless_of_input_order():
    a = IdIndex.from_values(["u3", "u1", "u2", "u1"])
    b = IdIndex.from_values(["u2", "u1", "u3"])

    assert a.ids.tolist() == ["u1", "u2", "u3"]
    assert a == b
    assert hash(a) == hash(b)
    assert len(a) == 3


def test_from_values_drops_missing_values_and_stringifies_numbers():
    index = IdIndex.from_values([10, None, 2, np.nan, "b", 2])

    assert index.ids.tolist() == ["10", "2", "b"]  # string order, not numeric order
    assert index.ids.dtype.kind == "U"


def test_from_values_accepts_a_pandas_series_and_categorical():
    series = pd.Series(["b", "a", None, "b"], dtype="category")

    assert IdIndex.from_values(series).ids.tolist() == ["a", "b"]


def test_empty_index_has_length_zero_and_maps_everything_to_minus_one():
    index = IdIndex.from_values([])

    assert len(index) == 0
    assert index.to_index(["a"]).tolist() == [-1]
    assert index.get("a") is None


def test_to_index_maps_known_ids_to_positions_and_unknown_to_minus_one():
    index = IdIndex.from_values(["c", "a", "b"])

    rows = index.to_index(["b", "zz", "a", "c", "b"])

    assert rows.tolist() == [1, -1, 0, 2, 1]
    assert rows.dtype == np.int64


def test_to_index_compares_as_strings():
    index = IdIndex.from_values(["17850", "2"])

    assert index.to_index([17850, 2, 3]).tolist() == [0, 1, -1]


def test_get_returns_the_position_or_none_for_unknown():
    index = IdIndex.from_values(["a", "b"])

    assert index.get("b") == 1
    assert index.get("a") == 0
    assert index.get("c") is None


def test_to_ids_inverts_to_index():
    index = IdIndex.from_values(["c", "a", "b"])

    assert index.to_ids(np.array([2, 0])).tolist() == ["c", "a"]
    assert index.to_ids(index.to_index(["b", "c"])).tolist() == ["b", "c"]


def test_save_and_load_round_trip_as_a_plain_unicode_array(tmp_path: Path):
    index = IdIndex.from_values(["u2", "u10", "ü-1", "u1"])
    path = tmp_path / "users.npy"

    index.save(path)

    raw = np.load(path, allow_pickle=False)
    assert raw.dtype.kind == "U"
    assert raw.tolist() == ["u1", "u10", "u2", "ü-1"]
    loaded = IdIndex.load(path)
    assert loaded == index
    assert loaded.get("u10") == 1


def test_equality_needs_the_same_ids():
    assert IdIndex.from_values(["a"]) != IdIndex.from_values(["a", "b"])
    assert IdIndex.from_values(["a"]) != ["a"]


@pytest.mark.parametrize(
    "ids",
    [
        np.array(["a", "b"], dtype=object),
        np.array([1, 2]),
        np.array([["a", "b"]]),
        np.array(["b", "a"]),
        np.array(["a", "a", "b"]),
    ],
    ids=["object_dtype", "int_dtype", "two_dimensional", "unsorted", "duplicated"],
)
def test_constructor_rejects_non_unicode_multi_dim_unsorted_or_duplicated_arrays(ids: np.ndarray):
    with pytest.raises(ValueError):
        IdIndex(ids)


def test_constructor_accepts_a_sorted_unique_unicode_array():
    assert len(IdIndex(np.array(["a", "b"]))) == 2


def test_loading_a_corrupt_file_raises_artifact_error(tmp_path: Path):
    path = tmp_path / "users.npy"
    path.write_bytes(b"\x93NUMPY garbage that is not a header")

    with pytest.raises(ArtifactError, match=r"users\.npy"):
        IdIndex.load(path)


def test_loading_a_missing_file_raises_artifact_error(tmp_path: Path):
    with pytest.raises(ArtifactError):
        IdIndex.load(tmp_path / "nope.npy")


def test_loading_a_pickled_object_array_raises_artifact_error(tmp_path: Path):
    path = tmp_path / "users.npy"
    np.save(path, np.array(["a", "b"], dtype=object), allow_pickle=True)

    with pytest.raises(ArtifactError):
        IdIndex.load(path)


def test_loading_an_unsorted_array_raises_artifact_error(tmp_path: Path):
    path = tmp_path / "users.npy"
    np.save(path, np.array(["b", "a"]))

    with pytest.raises(ArtifactError, match="sorted"):
        IdIndex.load(path)


def test_save_and_load_round_trip_with_a_path_without_npy_suffix(tmp_path: Path):
    index = IdIndex.from_values(["a", "b"])

    index.save(tmp_path / "users")

    assert IdIndex.load(tmp_path / "users") == index
