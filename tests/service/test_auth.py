"""Key roles (storefront, marketer, admin), rotation, rate limits with 429, and what /readyz tells whom."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from features.artifact import ModelArtifact
from service.app import create_app
from service.config import Settings


def _settings(artifact_dir: Path, **extra: object) -> Settings:
    keys = {"api_keys": ("shop-old", "shop-new"), "marketer_keys": ("mkt",), "admin_keys": ("boss",)}
    return Settings(model_uri=str(artifact_dir), **{**keys, **extra})  # type: ignore[arg-type]


def test_h2_each_role_reaches_only_its_endpoints(artifact_dir: Path, artifact: ModelArtifact) -> None:
    user, item = str(artifact.users.ids[0]), str(artifact.items.ids[0])
    event = [{"user_id": user, "item_id": item, "type": "view"}]
    calls = {
        "recs": ("GET", f"/v1/users/{user}/recommendations", None),
        "events": ("POST", "/v1/events", event),
        "bundles": ("GET", "/v1/bundles", None),
        "report": ("GET", "/v1/experiments/report", None),
        "reload": ("POST", "/v1/admin/reload", None),
    }
    expected = {
        "shop-new": {"recs": 200, "events": 202, "bundles": 200, "report": 403, "reload": 403},
        "mkt": {"recs": 403, "events": 403, "bundles": 200, "report": 200, "reload": 403},
        "boss": {"recs": 200, "events": 202, "bundles": 200, "report": 200, "reload": 200},
    }
    with TestClient(create_app(_settings(artifact_dir))) as c:
        for key, statuses in expected.items():
            got = {
                name: c.request(method, path, json=body, headers={"X-API-Key": key}).status_code
                for name, (method, path, body) in calls.items()
            }
            assert got == statuses, key
        refused = c.get("/v1/experiments/report", headers={"X-API-Key": "shop-old"}).json()["error"]
        assert refused["code"] == "forbidden" and "storefront" in refused["message"]
        assert "marketer or admin" in refused["message"]


def test_h2_several_keys_of_a_role_are_valid_at_once_so_a_key_can_be_rotated(artifact_dir: Path) -> None:
    with TestClient(create_app(_settings(artifact_dir))) as c:
        for key in ("shop-old", "shop-new"):
            assert c.get("/v1/model", headers={"X-API-Key": key}).status_code == 200
    rotated = _settings(artifact_dir, api_keys=("shop-new",))
    with TestClient(create_app(rotated)) as c:
        assert c.get("/v1/model", headers={"X-API-Key": "shop-old"}).status_code == 401
        assert c.get("/v1/model", headers={"X-API-Key": "shop-new"}).status_code == 200


def test_m10_readyz_details_and_metrics_need_an_admin_key_once_keys_are_set(artifact_dir: Path) -> None:
    with TestClient(create_app(_settings(artifact_dir))) as c:
        public = c.get("/readyz")
        assert public.status_code == 200 and public.json()["ready"] is True
        assert "cache" not in public.json() and "admin" in public.json()["details"]
        assert c.get("/readyz", headers={"X-API-Key": "shop-new"}).json().get("cache") is None
        detailed = c.get("/readyz", headers={"X-API-Key": "boss"}).json()
        assert detailed["cache"]["backend"] == "memory" and "variants" in detailed
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"X-API-Key": "mkt"}).status_code == 403
        assert c.get("/metrics", headers={"Authorization": "Bearer boss"}).status_code == 200


def test_m12_a_key_over_its_rate_gets_429_with_retry_after_and_other_keys_still_answer(
    artifact_dir: Path,
) -> None:
    settings = _settings(artifact_dir, rate_limit_storefront="5/minute")
    with TestClient(create_app(settings)) as c:
        answers = [c.get("/v1/model", headers={"X-API-Key": "shop-old"}) for _ in range(7)]
        assert [a.status_code for a in answers] == [200] * 5 + [429] * 2
        over = answers[-1]
        assert 1 <= int(over.headers["retry-after"]) <= 60
        assert (
            over.json()["error"]["code"] == "rate_limited"
            and "5 per 1 minute" in over.json()["error"]["message"]
        )
        assert c.get("/v1/model", headers={"X-API-Key": "shop-new"}).status_code == 200
        assert c.get("/v1/model", headers={"X-API-Key": "mkt"}).status_code == 200


def test_m12_page_logins_are_limited_per_address(artifact_dir: Path) -> None:
    settings = _settings(artifact_dir, rate_limit_login="3/minute")
    with TestClient(create_app(settings)) as c:
        tries = [c.post("/ui/login", data={"key": f"guess-{i}"}).status_code for i in range(5)]
        assert tries == [401, 401, 401, 429, 429]


def test_a_rate_the_limits_library_cannot_read_is_refused_at_start(artifact_dir: Path) -> None:
    with pytest.raises(ValueError, match="rate_limit_storefront"):
        _settings(artifact_dir, rate_limit_storefront="lots")


@pytest.mark.redis
def test_m12_replicas_share_one_count_in_redis(artifact_dir: Path, redis_url: str) -> None:
    settings = _settings(artifact_dir, redis_url=redis_url, rate_limit_storefront="4/minute")
    with TestClient(create_app(settings)) as a, TestClient(create_app(settings)) as b:
        statuses = [
            (a if i % 2 else b).get("/v1/model", headers={"X-API-Key": "shop-old"}).status_code
            for i in range(6)
        ]
        assert statuses == [200] * 4 + [429] * 2
        ready = a.get("/readyz", headers={"X-API-Key": "boss"}).json()
        assert ready["rate_limits"] == {"shared": True, "degraded": False}


def test_m12_rates_keep_counting_in_process_when_redis_is_unreachable(artifact_dir: Path) -> None:
    settings = _settings(
        artifact_dir,
        redis_url="redis://127.0.0.1:1/0",
        rate_limit_storefront="3/minute",
        redis_timeout_s=0.05,
    )
    with TestClient(create_app(settings)) as c:
        statuses = [c.get("/v1/model", headers={"X-API-Key": "shop-old"}).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        assert c.get("/readyz", headers={"X-API-Key": "boss"}).json()["rate_limits"]["degraded"] is True
