"""Shared fixtures: a small synthetic store and its dataset; a real Redis (required in CI)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from features.artifact import ModelArtifact, load_artifact
from features.dataset import Dataset, load_dataset
from features.io import resolve_format
from features.synthetic import SyntheticStore, generate_store, write_store
from tests.harness import PrivateRedis
from training.job import TrainConfig, run_training


@pytest.fixture
def redis_url() -> Iterator[str]:
    """Return the URL of a real, empty Redis database; fail if CI requires one and none answers."""

    url = os.environ.get("ORDERLIFT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    client = redis.Redis.from_url(url, socket_connect_timeout=1.0)
    try:
        client.ping()
    except redis.RedisError as exc:
        message = f"Redis at {url} is not reachable: {exc}"
        if os.environ.get("ORDERLIFT_REQUIRE_REDIS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@pytest.fixture(scope="session")
def store() -> SyntheticStore:
    """Return a deterministic store: 1,500 users, 200 items, 60 days."""
    return generate_store(users=1500, items=200, days=60, seed=11)


@pytest.fixture(scope="session")
def store_dir(store: SyntheticStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a directory holding the store's events.csv, items.csv and truth.json."""
    out = tmp_path_factory.mktemp("store")
    write_store(store, out)
    return out


@pytest.fixture(scope="session")
def dataset(store_dir: Path) -> Dataset:
    """Return the store loaded through the event pipeline, with its catalog."""
    return load_dataset(store_dir / "events.csv", resolve_format(), store_dir / "items.csv")


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """Start a private redis-server (never the shared one) and kill it at teardown."""
    if shutil.which("redis-server") is None:
        message = "redis-server is not installed"
        if os.environ.get("ORDERLIFT_REQUIRE_REDIS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="session", autouse=True)
def _event_log_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep every app's embedded event log out of the working tree."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ORDERLIFT_EVENT_LOG", str(tmp_path_factory.mktemp("events") / "events.jsonl"))
        yield


@pytest.fixture(scope="session")
def artifact_dir(dataset: Dataset, store_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return an artifact of an ALS model trained on the synthetic store.

    With ``ORDERLIFT_TEST_ENGINE=spark`` the Spark engine trains it (embedded Spark, MLlib ALS),
    so the whole service suite runs against a Spark-built artifact.
    """
    out = tmp_path_factory.mktemp("served") / "artifact"
    config = TrainConfig(model="als", params={"factors": 16, "iterations": 8}, holdout=0.2)
    if os.environ.get("ORDERLIFT_TEST_ENGINE") == "spark":
        from training.spark.dataset import load_dataset_spark
        from training.spark.session import spark_session

        with spark_session("local[2]", {"spark.sql.shuffle.partitions": "4"}) as spark:
            built = load_dataset_spark(
                spark, store_dir / "events.csv", resolve_format(), store_dir / "items.csv"
            )
            run_training(built, replace(config, engine="spark"), out, {"fingerprint": "test"})
        return out
    run_training(dataset, config, out, {"fingerprint": "test"})
    return out


@pytest.fixture(scope="session")
def artifact(artifact_dir: Path) -> ModelArtifact:
    """Return the served artifact, loaded."""
    return load_artifact(artifact_dir)


def without_recommendation_id(body: bytes) -> bytes:
    """Return answer bytes with the per-response recommendation id blanked (L9: minted per response)."""
    import re

    return re.sub(rb'"recommendation_id":"[^"]*"', b'"recommendation_id":""', body)
