"""Reading shop exports: file formats, column mappings, presets and unreadable input."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from features.errors import DataError, MappingError, MissingColumnError, UnreadableFileError
from features.io import PRESETS, SourceFormat, parse_mapping, read_items, read_table, resolve_format
from features.schema import EVENT_COLUMNS
from features.validate import load_events

SHOP_CSV = (
    "CustomerID,StockCode,InvoiceDate,InvoiceNo,Quantity,UnitPrice,Description,Country\n"
    "17850.0,85123A,2010-12-01 08:26:00,536365,6,2.55,WHITE HANGING HEART,United Kingdom\n"
    "17850.0,71053,2010-12-01 08:26:00,536365,6,3.39,WHITE METAL LANTERN,United Kingdom\n"
    ",71053,2010-12-01 09:00:00,536370,1,3.39,WHITE METAL LANTERN,France\n"
    "13047.0,71053,2010-12-02 10:00:00,536371,2,3.39,WHITE METAL LANTERN,United Kingdom\n"
    "13047.0,71053,2010-12-03 10:00:00,C536372,-1,3.39,WHITE METAL LANTERN,United Kingdom\n"
)
MAPPING = "user_id=CustomerID,item_id=StockCode,timestamp=InvoiceDate,order_id=InvoiceNo"
OPTIONS = "quantity=Quantity,price=UnitPrice,item_name=Description"


def shop_format() -> SourceFormat:
    return resolve_format(
        mapping=parse_mapping(f"{MAPPING},{OPTIONS}"),
        event_type="purchase",
        cancel_prefix="C",
        float_id_columns=("user_id",),
    )


def event_rows(frame: pd.DataFrame) -> list[tuple[object, ...]]:
    return [tuple(r) for r in frame.astype(object).itertuples(index=False)]


# --- formats -------------------------------------------------------------------------------------


def test_csv_gzip_csv_and_parquet_all_load_the_same_events(tmp_path: Path):
    plain = tmp_path / "orders.csv"
    plain.write_text(SHOP_CSV)
    zipped = tmp_path / "orders.csv.gz"
    zipped.write_bytes(gzip.compress(SHOP_CSV.encode()))
    parquet = tmp_path / "orders.parquet"
    header = SHOP_CSV.split("\n", 1)[0].split(",")
    options = pa_csv.ConvertOptions(column_types={c: pa.string() for c in header}, strings_can_be_null=True)
    pq.write_table(pa_csv.read_csv(plain, convert_options=options), parquet)

    results = [load_events(p, shop_format()) for p in (plain, zipped, parquet)]

    first = results[0]
    assert first.report.rows_read == 5
    assert first.report.rows_accepted == 3
    assert first.events["user_id"].tolist() == ["17850", "17850", "13047"]
    assert first.events["quantity"].tolist() == [6.0, 6.0, 1.0]
    for other in results[1:]:
        assert other.report == first.report
        assert event_rows(other.events) == event_rows(first.events)


def test_parquet_with_native_numeric_and_timestamp_types_loads_like_text(tmp_path: Path):
    frame = pd.DataFrame(
        {
            "user_id": [17850.0, None, 13047.0],
            "item_id": ["a", "b", "c"],
            "timestamp": pd.to_datetime(["2024-01-01 10:00", "2024-01-02 00:00", "2024-01-03 00:00"]),
            "quantity": [2, 1, 3],
            "price": [3.5, 1.0, 2.25],
        }
    )
    path = tmp_path / "native.pq"
    frame.to_parquet(path)

    result = load_events(path, SourceFormat(event_type="purchase", float_id_columns=("user_id",)))

    assert result.report.rejected["missing_user"] == 1
    events = result.events
    assert events["user_id"].tolist() == ["17850", "13047"]
    assert events["quantity"].tolist() == [2.0, 3.0]
    assert events["price"].tolist() == [3.5, 2.25]
    assert events["timestamp"].tolist() == [
        pd.Timestamp("2024-01-01 10:00", tz="UTC"),
        pd.Timestamp("2024-01-03 00:00", tz="UTC"),
    ]


def test_parquet_with_many_row_groups_keeps_every_value(tmp_path: Path):
    users = [f"u{i % 5}" for i in range(100)]
    items = [f"i{(i * 7) % 13}" for i in range(100)]
    table = pa.table(
        {
            "user_id": users,
            "item_id": items,
            "timestamp": [f"2024-01-{1 + i % 28:02d}T{i % 24:02d}:00:00" for i in range(100)],
            "event_type": ["view", "cart", "purchase", "VIEW"] * 25,
        }
    )
    path = tmp_path / "chunks.parquet"
    pq.write_table(table, path, row_group_size=7)

    result = load_events(path, SourceFormat())

    assert result.report.rows_accepted == 100
    assert result.events["user_id"].tolist() == users
    assert result.events["item_id"].tolist() == items


def test_read_table_returns_only_present_columns_under_canonical_names(tmp_path: Path):
    path = tmp_path / "orders.csv"
    path.write_text(SHOP_CSV)
    wanted = {name: shop_format().source_column(name) for name in EVENT_COLUMNS}

    table = read_table(path, wanted)

    assert table.column_names == [
        "user_id", "item_id", "timestamp", "order_id", "quantity", "price", "item_name",
    ]  # fmt: skip
    assert table.num_rows == 5
    assert pa.types.is_dictionary(table.schema.field("user_id").type)
    assert table.column("user_id").to_pylist() == ["17850.0", "17850.0", None, "13047.0", "13047.0"]
    assert table.column("order_id").to_pylist()[4] == "C536372"  # never parsed as a number


def test_codes_with_leading_zeros_stay_strings(tmp_path: Path):
    path = tmp_path / "e.csv"
    path.write_text("user_id,item_id,timestamp\n007,00042,2024-01-01\n7,42,2024-01-02\n")

    result = load_events(path, SourceFormat(event_type="view"))

    assert result.events["user_id"].tolist() == ["007", "7"]
    assert result.events["item_id"].tolist() == ["00042", "42"]


def test_read_items_needs_only_item_id(tmp_path: Path):
    path = tmp_path / "items.csv"
    path.write_text("item_id,price,colour\na,1.5,red\nb,,blue\n")

    table = read_items(path)

    assert table.column_names == ["item_id", "price"]
    assert table.column("price").to_pylist() == ["1.5", None]


def test_read_items_maps_catalog_columns(tmp_path: Path):
    path = tmp_path / "items.csv"
    path.write_text("sku,title\na,Mug\n")

    table = read_items(path, {"item_id": "sku", "name": "title"})

    assert table.column_names == ["item_id", "name"]
    assert table.column("name").to_pylist() == ["Mug"]


def test_read_items_without_an_item_id_column_raises(tmp_path: Path):
    path = tmp_path / "items.csv"
    path.write_text("sku,title\na,Mug\n")

    with pytest.raises(MissingColumnError, match="'item_id'"):
        read_items(path)


# --- column mappings -----------------------------------------------------------------------------


def test_parse_mapping_reads_comma_separated_pairs():
    assert parse_mapping("user_id=CustomerID,item_id=StockCode") == {
        "user_id": "CustomerID",
        "item_id": "StockCode",
    }


def test_parse_mapping_accepts_a_list_of_pairs_trims_spaces_and_skips_blank_entries():
    assert parse_mapping(["user_id = CustomerID", "item_id=StockCode, ,timestamp=Invoice Date,"]) == {
        "user_id": "CustomerID",
        "item_id": "StockCode",
        "timestamp": "Invoice Date",
    }


@pytest.mark.parametrize("empty", [None, "", []])
def test_parse_mapping_of_nothing_is_empty(empty: object):
    assert parse_mapping(empty) == {}  # type: ignore[arg-type]


def test_parse_mapping_later_entries_win():
    assert parse_mapping("user_id=A,user_id=B") == {"user_id": "B"}


@pytest.mark.parametrize("entry", ["user_id", "=CustomerID", "user_id=", " = "])
def test_malformed_mapping_entry_raises_mapping_error_naming_the_entry(entry: str):
    with pytest.raises(MappingError) as info:
        parse_mapping(f"item_id=StockCode,{entry}")
    assert repr(entry) in str(info.value)
    assert isinstance(info.value, DataError)
    assert isinstance(info.value, ValueError)


def test_mapping_an_unknown_canonical_column_raises():
    with pytest.raises(MappingError, match="'customer'"):
        resolve_format(mapping={"customer": "CustomerID"})


def test_unknown_preset_raises_naming_the_known_presets():
    with pytest.raises(MappingError) as info:
        resolve_format("magento")
    assert "'magento'" in str(info.value)
    assert "online-retail" in str(info.value) and "shopify" in str(info.value)


def test_constant_event_type_must_be_view_cart_or_purchase():
    with pytest.raises(MappingError, match="'refund'"):
        resolve_format(event_type="refund")


def test_event_type_values_must_target_view_cart_or_purchase():
    with pytest.raises(MappingError, match="'wishlist'"):
        resolve_format(event_type_values={"Wish": "wishlist"})


def test_online_retail_preset_maps_the_uci_columns():
    fmt = resolve_format("online-retail")

    assert fmt.source_column("user_id") == "CustomerID"
    assert fmt.source_column("item_id") == "StockCode"
    assert fmt.source_column("timestamp") == "InvoiceDate"
    assert fmt.source_column("order_id") == "InvoiceNo"
    assert fmt.source_column("category") == "category"  # unmapped: its own name
    assert fmt.event_type == "purchase"
    assert fmt.cancel_prefix == "C"
    assert fmt.float_id_columns == ("user_id",)
    assert "POST" in fmt.non_product_patterns


def test_explicit_mapping_and_options_override_the_preset_and_none_options_are_ignored():
    fmt = resolve_format(
        "online-retail",
        mapping={"user_id": "Customer"},
        event_type="view",
        event_type_values={"Buy": "purchase"},
        timezone="Europe/London",
        cancel_prefix=None,
    )

    assert fmt.source_column("user_id") == "Customer"
    assert fmt.source_column("item_id") == "StockCode"
    assert fmt.event_type == "view"
    assert fmt.event_type_values == {"Buy": "purchase"}
    assert fmt.timezone == "Europe/London"
    assert fmt.cancel_prefix == "C"  # None means "not given"
    assert PRESETS["online-retail"].source_column("user_id") == "CustomerID"  # preset untouched


def test_resolve_format_without_preset_uses_canonical_names():
    fmt = resolve_format()

    assert fmt == SourceFormat()
    assert fmt.source_column("user_id") == "user_id"


def test_missing_mapped_required_column_raises_naming_the_column(tmp_path: Path):
    path = tmp_path / "orders.csv"
    path.write_text(SHOP_CSV)
    fmt = resolve_format(mapping=parse_mapping(f"{MAPPING},user_id=Customer"), event_type="purchase")

    with pytest.raises(MissingColumnError) as info:
        load_events(path, fmt)
    message = str(info.value)
    assert "'Customer'" in message
    assert "user_id" in message
    assert "CustomerID" in message  # the columns that are there


def test_missing_canonical_required_column_raises(tmp_path: Path):
    path = tmp_path / "e.csv"
    path.write_text("user_id,item_id\nu1,a\n")

    with pytest.raises(MissingColumnError, match="'timestamp'"):
        load_events(path, SourceFormat(event_type="view"))


def test_missing_mapped_optional_column_raises_naming_the_column(tmp_path: Path):
    path = tmp_path / "orders.csv"
    path.write_text(SHOP_CSV)
    fmt = resolve_format(mapping=parse_mapping(f"{MAPPING},quantity=Quantiy"), event_type="purchase")

    with pytest.raises(MissingColumnError, match="'Quantiy'"):
        load_events(path, fmt)


def test_missing_event_type_column_without_a_constant_points_at_event_type_option(tmp_path: Path):
    path = tmp_path / "e.csv"
    path.write_text("user_id,item_id,timestamp\nu1,a,2024-01-01\n")

    with pytest.raises(MissingColumnError) as info:
        load_events(path, SourceFormat())
    assert "--event-type" in str(info.value)
    assert "'event_type'" in str(info.value)


def test_event_type_column_can_be_mapped(tmp_path: Path):
    path = tmp_path / "e.csv"
    path.write_text("user_id,item_id,timestamp,action\nu1,a,2024-01-01,view\nu1,b,2024-01-02,cart\n")
    fmt = resolve_format(mapping={"event_type": "action"})

    result = load_events(path, fmt)

    assert result.events["event_type"].tolist() == ["view", "cart"]


# --- unreadable files ----------------------------------------------------------------------------


def test_missing_file_raises_unreadable_file_error(tmp_path: Path):
    with pytest.raises(UnreadableFileError, match="no such file"):
        load_events(tmp_path / "nope.csv", SourceFormat(event_type="view"))


def test_directory_instead_of_file_raises_unreadable_file_error(tmp_path: Path):
    with pytest.raises(UnreadableFileError):
        load_events(tmp_path, SourceFormat(event_type="view"))


def test_empty_file_raises_unreadable_file_error(tmp_path: Path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")

    with pytest.raises(UnreadableFileError, match=r"empty\.csv"):
        load_events(path, SourceFormat(event_type="view"))


@pytest.mark.parametrize(
    "payload",
    [
        bytes(range(256)) * 20,
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes((i * 37) % 256 for i in range(4000)),
    ],
    ids=["all_bytes", "png"],
)
def test_binary_file_raises_unreadable_file_error_with_a_printable_message(tmp_path: Path, payload: bytes):
    path = tmp_path / "events.csv"
    path.write_bytes(payload)

    with pytest.raises(UnreadableFileError) as info:
        load_events(path, SourceFormat(event_type="view"))
    message = str(info.value)
    assert message.isprintable()
    assert str(path) in message


def test_non_parquet_bytes_with_a_parquet_name_raise_unreadable_file_error(tmp_path: Path):
    path = tmp_path / "events.parquet"
    path.write_text("user_id,item_id,timestamp\nu1,a,2024-01-01\n")

    with pytest.raises(UnreadableFileError):
        load_events(path, SourceFormat(event_type="view"))


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.95])
def test_truncated_gzip_raises_unreadable_file_error(tmp_path: Path, keep: float):
    body = "user_id,item_id,timestamp\n" + "".join(
        f"u{i},i{i % 7},2024-01-01 10:{i % 60:02d}:00\n" for i in range(5000)
    )
    data = gzip.compress(body.encode())
    path = tmp_path / "events.csv.gz"
    path.write_bytes(data[: int(len(data) * keep)])

    with pytest.raises(UnreadableFileError, match=r"events\.csv\.gz"):
        load_events(path, SourceFormat(event_type="view"))


def test_ragged_csv_row_raises_unreadable_file_error(tmp_path: Path):
    path = tmp_path / "e.csv"
    path.write_text("user_id,item_id,timestamp\nu1,a,2024-01-01\nu2,b,2024-01-02,extra\n")

    with pytest.raises(UnreadableFileError):
        load_events(path, SourceFormat(event_type="view"))


def test_utf8_bom_and_windows_line_endings_are_handled(tmp_path: Path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbfuser_id,item_id,timestamp\r\nu1,a,2024-01-01\r\nu2,b ,2024-01-02\r\n")

    result = load_events(path, SourceFormat(event_type="view"))

    assert result.events["user_id"].tolist() == ["u1", "u2"]
    assert result.events["item_id"].tolist() == ["a", "b"]
