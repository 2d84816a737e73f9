"""The Spark engine gives the local engine's validation, ids, weights, co-purchases and artifact."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from features.association import association_stats
from features.dataset import Dataset, load_dataset
from features.errors import DataError
from features.io import resolve_format
from features.matrix import Weighting
from features.split import chronological_split
from service.app import create_app
from service.config import Settings
from training.cli import app
from training.evaluate import build_holdout, evaluate_model
from training.job import TrainConfig, all_orders, run_training
from training.models import create_model

MESSY = '''user_id,item_id,event_type,timestamp,order_id,quantity,price,item_name
u1,a,view,2026-01-01 10:00:00,,1,5.0,"Mug, ""large"""
u1,a,purchase,2026-01-02 10:00:00,o1,3,5.0,"Mug, ""large"""
u1,b,purchase,2026-01-02 10:00:00,o1,1,8.0,Plate
u1,b,purchase,2026-01-02 10:00:00,o1,1,8.0,Plate
u1,a,purchase,2026-01-05 10:00:00,o9,-2,5.0,"Mug, ""large"""
u2,a,purchase,2026-01-03 11:00:00,o2,1,5.0,Mug
u2,b,purchase,2026-01-03 11:00:00,o2,2,8.0,Plate
u2,c,purchase,2026-01-03 11:00:00,o2,1,3.5,Spoon
u2,c,dismiss,2026-01-09 11:00:00,,1,,
u2,d,cart,2026-01-04 09:00:00,,1,12.0,Bowl
u3,a,purchase,2026-01-06 12:00:00,o3,1,5.0,Mug
u3,c,purchase,2026-01-06 12:00:00,o3,4,3.5,Spoon
u3,d,view,2026-01-07 12:00:00,,1,12.0,Bowl
17850.0,c,purchase,2026-01-08 12:00:00,o5,1,3.5,Spoon
17850,d,purchase,2026-01-08 12:00:00,o5,1,12.0,Bowl
,a,purchase,2026-01-04 08:00:00,o4,1,5.0,Mug
,b,purchase,2026-01-04 08:00:00,o4,1,8.0,Plate
,b,purchase,2026-01-04 08:00:00,o4,1,8.0,Plate
,c,view,2026-01-04 08:00:00,,1,3.5,Spoon
NA,a,view,2026-01-04 08:00:00,,1,5.0,Mug
u1,a,wishlist,2026-01-04 08:00:00,,1,5.0,Mug
u1,,view,2026-01-04 08:00:00,,1,5.0,Mug
u1,a,view,yesterday,,1,5.0,Mug
u2,a,purchase,2026-01-04 08:00:00,o6,abc,5.0,Mug
u2,b,purchase,2026-01-04 08:00:00,o6,1,-3,Plate
u3,b,purchase,2026-01-10 08:00:00,o7,2,8.0,Plate
u3,a,purchase,2026-01-10 08:00:00,o7,1,5.0,Mug
'''


#: The messy file's format: float user ids ("17850.0" is "17850").
FLOAT_IDS = resolve_format(None, float_id_columns=("user_id",))


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    """Return the messy rows written to a CSV file."""
    path = tmp_path / "messy.csv"
    path.write_text(MESSY)
    return path


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """Yield an embedded Spark session; without pyspark or Java, fail in CI and skip elsewhere."""
    missing = None
    try:
        import pyspark  # noqa: F401
    except ImportError:
        missing = "pyspark is not installed (pip install 'orderlift[spark]')"
    if missing is None and shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        missing = "no Java runtime (apt-get install openjdk-17-jre-headless)"
    if missing is not None:
        if os.environ.get("ORDERLIFT_REQUIRE_SPARK") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    from training.spark.session import spark_session

    conf = {"spark.sql.shuffle.partitions": "4", "spark.driver.memory": "1g"}
    with spark_session("local[2]", conf) as session:
        yield session


def _both(
    spark: Any, path: Path, fmt: Any, weighting: Weighting | None = None, items: Path | None = None
) -> tuple[Dataset, Dataset]:
    from training.spark.dataset import load_dataset_spark

    local = load_dataset(path, fmt, items, weighting)
    return local, load_dataset_spark(spark, path, fmt, items, weighting, min_pair_count=1)


def test_spark_validation_gives_the_local_reasons_counts_netting_and_quarantine_rows(
    spark: Any, messy: Path
) -> None:
    path, fmt = messy, FLOAT_IDS
    local, remote = _both(spark, path, fmt)
    assert remote.validation.report == local.validation.report
    report = local.validation.report
    assert report.reconciled and report.rows_anonymous == 2
    assert report.rejected["duplicate"] == 1 and report.rejected["return"] == 1
    assert report.rejected["missing_user"] == 3  # a blank, an "NA" and a repeated anonymous line
    assert report.returns.matched_quantity == 2.0
    for name in (
        "missing_user",
        "unknown_event_type",
        "missing_item",
        "bad_timestamp",
        "bad_quantity",
        "bad_price",
    ):
        assert report.rejected[name] >= 1, name
    assert remote.validation.rejected.equals(local.validation.rejected)
    pd.testing.assert_frame_equal(remote.events, local.events)
    pd.testing.assert_frame_equal(remote.anonymous, local.anonymous)
    assert set(local.interactions.users.ids) == {"u1", "u2", "u3", "17850"}


def test_spark_weights_decay_dismissals_and_copurchases_equal_the_local_engines(
    spark: Any, messy: Path
) -> None:
    path, fmt = messy, FLOAT_IDS
    local, remote = _both(spark, path, fmt, Weighting(half_life_days=3.0))
    assert remote.interactions.users == local.interactions.users
    assert remote.interactions.items == local.interactions.items
    assert (remote.interactions.matrix != local.interactions.matrix).nnz == 0
    u2, c = local.interactions.users.get("u2"), local.interactions.items.get("c")
    assert local.interactions.matrix[u2, c] == 0  # dismissed after the purchase
    pd.testing.assert_frame_equal(remote.interactions.item_meta, local.interactions.item_meta)
    expected = association_stats(all_orders(local), min_count=1)
    assert remote.copurchase is not None
    assert (remote.copurchase.pair_counts != expected.pair_counts).nnz == 0
    assert np.array_equal(remote.copurchase.item_counts, expected.item_counts)
    assert (
        remote.copurchase.n_baskets == expected.n_baskets == 6
    )  # o1 o2 o3 o5 o7, anonymous o4, and o9? no: a return


@pytest.mark.parametrize("preset", ["shopify", "woocommerce"])
def test_spark_reads_shop_exports_carrying_order_fields_and_hashing_emails_as_the_local_engine(
    spark: Any, tmp_path: Path, preset: str
) -> None:
    from tests.features.test_presets import SHOPIFY_HEADER, SHOPIFY_ROWS, WOO_HEADER, WOO_ROWS
    from training.spark.dataset import load_dataset_spark

    header, rows = (SHOPIFY_HEADER, SHOPIFY_ROWS) if preset == "shopify" else (WOO_HEADER, WOO_ROWS)
    path = tmp_path / "orders.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    fmt = resolve_format(preset)
    local = load_dataset(path, fmt)
    remote = load_dataset_spark(spark, path, fmt)
    assert remote.validation.report == local.validation.report
    assert remote.validation.rejected.equals(local.validation.rejected)
    pd.testing.assert_frame_equal(remote.events, local.events)
    assert not any("@" in str(u) for u in remote.interactions.users.ids)


def test_spark_k_core_filtering_keeps_the_local_engines_users_items_and_weights(
    spark: Any, messy: Path
) -> None:
    from training.spark.dataset import load_dataset_spark

    path, fmt = messy, FLOAT_IDS
    local = load_dataset(path, fmt, min_user=3, min_item=2)
    remote = load_dataset_spark(spark, path, fmt, min_user=3, min_item=2)
    assert remote.interactions.users == local.interactions.users
    assert remote.interactions.items == local.interactions.items
    assert len(local.interactions.users) < 4  # the filter dropped someone
    assert (remote.interactions.matrix != local.interactions.matrix).nnz == 0


def test_spark_reads_a_file_uri_and_a_directory_of_parquet_parts(
    spark: Any, tmp_path: Path, messy: Path
) -> None:
    from training.spark.dataset import load_dataset_spark

    path, fmt = messy, FLOAT_IDS
    local = load_dataset(path, fmt)
    by_uri = load_dataset_spark(spark, path.as_uri(), fmt)
    assert by_uri.validation.report == local.validation.report
    parts = tmp_path / "events.parquet"
    parts.mkdir()
    frame = pd.read_csv(path, dtype=str, keep_default_na=False).replace({"": None, "NA": None})
    frame[:12].to_parquet(parts / "part-0.parquet")
    frame[12:].to_parquet(parts / "part-1.parquet")
    from_parts = load_dataset_spark(spark, str(parts), fmt)
    assert from_parts.validation.report.rows_read == local.validation.report.rows_read
    assert from_parts.validation.report.rejected == local.validation.report.rejected
    assert (from_parts.interactions.matrix != local.interactions.matrix).nnz == 0
    with pytest.raises(DataError, match="no such file or directory"):
        load_dataset_spark(spark, str(tmp_path / "missing.csv"), fmt)


@pytest.fixture(scope="module")
def spark_store(spark: Any, store_dir: Path, dataset: Dataset) -> Dataset:
    """Return the shared synthetic store loaded by the Spark engine."""
    from training.spark.dataset import load_dataset_spark

    return load_dataset_spark(spark, store_dir / "events.csv", resolve_format(), store_dir / "items.csv")


def test_spark_loads_the_synthetic_store_with_the_local_report_ids_weights_and_pair_counts(
    spark_store: Dataset, dataset: Dataset
) -> None:
    assert spark_store.validation.report == dataset.validation.report
    assert spark_store.interactions.users == dataset.interactions.users
    assert spark_store.interactions.items == dataset.interactions.items
    assert (spark_store.interactions.matrix != dataset.interactions.matrix).nnz == 0
    expected = association_stats(all_orders(dataset), min_count=2)
    assert spark_store.copurchase is not None
    assert (spark_store.copurchase.pair_counts != expected.pair_counts).nnz == 0
    assert spark_store.copurchase.pair_counts.nnz > 100


def test_mllib_als_scores_within_ten_percent_of_implicit_ndcg_on_the_same_holdout(
    spark: Any, dataset: Dataset
) -> None:
    holdout = build_holdout(chronological_split(dataset.events, test_fraction=0.2), Weighting())
    params = {"factors": 32, "iterations": 10}
    local = create_model("als", **params)
    local.fit(holdout.train)
    remote = TrainConfig(model="als", params=params, engine="spark").new_model()
    remote.fit(holdout.train)
    ours = evaluate_model(remote, holdout, (10,))["ndcg_at_10"]
    theirs = evaluate_model(local, holdout, (10,))["ndcg_at_10"]
    popular = create_model("popular")
    popular.fit(holdout.train)
    assert ours >= 0.9 * theirs, (ours, theirs)
    assert ours > evaluate_model(popular, holdout, (10,))["ndcg_at_10"]


@pytest.fixture(scope="module")
def spark_artifact(spark_store: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return an artifact trained by the Spark engine as ``artifact_dir`` is by the local one."""
    out = tmp_path_factory.mktemp("spark") / "artifact"
    config = TrainConfig(model="als", params={"factors": 16, "iterations": 8}, holdout=0.2, engine="spark")
    run_training(spark_store, config, out, {"fingerprint": "test"})
    return out


@pytest.mark.parametrize("engine", ["local", "spark"])
def test_the_service_serves_either_engines_artifact_unchanged(
    engine: str, artifact_dir: Path, spark_artifact: Path
) -> None:
    path = artifact_dir if engine == "local" else spark_artifact
    with TestClient(create_app(Settings(model_uri=str(path))), raise_server_exceptions=False) as client:
        assert client.get("/readyz").status_code == 200
        assert client.get("/v1/model").json()["model"]["kind"] == "als"
        recs = client.get("/v1/users/u0001/recommendations", params={"n": 5}).json()
        assert len(recs["items"]) == 5
        similar = client.get("/v1/items/i010/similar", params={"kind": "also_bought", "n": 5})
        assert similar.status_code == 200
        cart = client.post(
            "/v1/cart/cross-sell", json={"items": [{"item_id": "i010", "quantity": 1}], "n": 5}
        )
        assert cart.status_code == 200 and len(cart.json()["items"]) == 5
        assert client.get("/v1/bundles", params={"n": 3}).status_code == 200
        assert client.get("/v1/users/u0001/reorder").status_code == 200
        bad = client.get("/v1/users/u0001/recommendations", params={"n": 0})
        assert bad.status_code == 422


def test_both_engines_artifacts_answer_also_bought_identically(
    artifact_dir: Path, spark_artifact: Path
) -> None:
    answers = []
    for path in (artifact_dir, spark_artifact):
        with TestClient(create_app(Settings(model_uri=str(path)))) as client:
            body = client.get("/v1/items/i010/similar", params={"kind": "also_bought", "n": 10}).json()
            answers.append([(i["item_id"], i.get("score")) for i in body["items"]])
    assert answers[0] == answers[1] and answers[0]


def test_train_engine_spark_on_the_command_line_writes_a_spark_artifact(
    spark: Any, store_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "model"
    result = CliRunner().invoke(
        app,
        ["train", "--events", str(store_dir / "events.csv"), "--items", str(store_dir / "items.csv"),
         "--engine", "spark", "--spark-master", "local[2]", "--factors", "8", "--iterations", "3",
         "--holdout", "none", "--out", str(out), "--no-track"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    import json

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["kind"] == "als"
    assert manifest["config"]["engine"] == "spark"
    assert manifest["data"]["engine"].startswith("spark")


def test_engine_spark_refuses_a_gpu_and_a_ga4_export_in_one_line(spark: Any, tmp_path: Path) -> None:
    runner = CliRunner()
    gpu = runner.invoke(
        app, ["train", "--events", "x.csv", "--engine", "spark", "--device", "gpu", "--no-track"]
    )
    assert gpu.exit_code == 2 and "--device gpu is for --engine local" in gpu.output
    other = runner.invoke(app, ["train", "--events", "x.csv", "--engine", "flink", "--no-track"])
    assert other.exit_code == 2 and "choose local or spark" in other.output
    ga4 = tmp_path / "ga4.ndjson"
    ga4.write_text("{}\n")
    found = runner.invoke(
        app,
        [
            "train",
            "--events",
            str(ga4),
            "--preset",
            "ga4",
            "--engine",
            "spark",
            "--out",
            str(tmp_path / "m"),
            "--no-track",
        ],
    )
    assert found.exit_code == 2 and "--engine local" in found.output, found.output


def test_without_java_the_spark_engine_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from training.errors import EngineError
    from training.spark import session

    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(EngineError, match="openjdk-17-jre-headless"):
        session._require_runtime()


def test_batch_score_scores_every_user_with_spark_udf_as_the_pyfunc_predicts(
    spark: Any, store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    runner = CliRunner()
    trained = runner.invoke(
        app,
        ["train", "--events", str(store_dir / "events.csv"), "--model", "cosine", "--holdout", "none",
         "--out", str(tmp_path / "model")],
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    out = tmp_path / "recs"
    scored = runner.invoke(
        app, ["batch-score", "--model-uri", "models:/orderlift@candidate", "--out", str(out), "--n", "4",
              "--spark-master", "local[2]"],
    )  # fmt: skip
    assert scored.exit_code == 0, scored.output
    found = pd.read_parquet(out).sort_values("user_id", ignore_index=True)
    users = np.load(tmp_path / "model" / "users.npy")
    assert sorted(found["user_id"]) == sorted(users.astype(str)) and len(found) > 1000
    assert all(len(items) == 4 for items in found["item_ids"])
    model = mlflow.pyfunc.load_model("models:/orderlift@candidate")
    expected = model.predict(pd.DataFrame({"user_id": found["user_id"][:3], "n": [4, 4, 4]}))
    assert [list(x) for x in found["item_ids"][:3]] == [list(x) for x in expected["item_ids"]]


def test_inspect_with_spark_prints_the_local_report_and_writes_the_same_quarantine(
    spark: Any, tmp_path: Path, messy: Path
) -> None:
    import json

    path = messy
    runner = CliRunner()
    reports = {}
    for engine in ("local", "spark"):
        result = runner.invoke(
            app,
            ["inspect", "--events", str(path), "--json", "--engine", engine, "--spark-master", "local[2]",
             "--quarantine", str(tmp_path / f"quarantine-{engine}.csv")],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        reports[engine] = json.loads(result.output)
        reports[engine].pop("quarantine")
    assert reports["spark"] == reports["local"]
    local, remote = ((tmp_path / f"quarantine-{e}.csv").read_text() for e in ("local", "spark"))
    assert remote == local and local.count("\n") == 11  # a header and ten rejected rows
