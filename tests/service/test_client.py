"""The API contract: a client generated from /openapi.json by openapi-python-client calls every endpoint."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from features.artifact import ModelArtifact
from service.app import create_app
from service.config import Settings

ADMIN = "admin-key-for-the-generated-client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory, artifact_dir: Path) -> Any:
    root = tmp_path_factory.mktemp("client")
    spec = root / "openapi.json"
    spec.write_text(json.dumps(create_app(Settings(model_uri=str(artifact_dir))).openapi()))
    tool = Path(sys.executable).with_name("openapi-python-client")
    env = {**os.environ, "PATH": f"{tool.parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # it runs ruff
    done = subprocess.run(
        [str(tool), "generate", "--path", str(spec), "--output-path", str(root / "orderlift_client"),
         "--meta", "none"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning" not in (done.stdout + done.stderr).lower(), done.stdout + done.stderr
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module("orderlift_client")
    finally:
        sys.path.remove(str(root))


def test_every_operation_has_a_readable_id(artifact_dir: Path) -> None:
    spec = create_app(Settings(model_uri=str(artifact_dir))).openapi()
    ids = sorted(op["operationId"] for path in spec["paths"].values() for op in path.values())
    assert ids == sorted([
        "user_recommendations", "session_recommendations", "similar_items", "cross_sell", "bundles",
        "post_events", "experiment_report", "reload_model", "healthz", "readyz", "model_info",
        "trending", "create_rule", "list_rules", "delete_rule", "dismissals", "kpis", "reorder",
    ])  # fmt: skip


def test_a_generated_client_calls_every_endpoint(
    generated: Any, artifact_dir: Path, artifact: ModelArtifact, tmp_path: Path
) -> None:
    api = importlib.import_module("orderlift_client.api")
    models = importlib.import_module("orderlift_client.models")
    ops = {
        name: importlib.import_module(f"orderlift_client.api.{tag}.{name}")
        for tag in ("storefront", "marketing", "events", "experiments", "operations")
        for name in (
            p.stem for p in Path(api.__file__).parent.joinpath(tag).glob("*.py") if p.stem != "__init__"
        )
    }
    user, item = str(artifact.users.ids[0]), str(artifact.items.ids[0])
    app = create_app(
        Settings(model_uri=str(artifact_dir), admin_keys=(ADMIN,), event_log=tmp_path / "e.jsonl")
    )

    async def call_all() -> dict[str, int]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            client = generated.AuthenticatedClient(
                base_url="http://orderlift", token=ADMIN, prefix="", auth_header_name="X-API-Key",
                httpx_args={"transport": transport},
            )  # fmt: skip
            event = models.EventIn(
                user_id=user, item_id=item, type_=models.LiveEventType.VIEW, event_id="gen-1"
            )
            calls = {
                "user_recommendations": ops["user_recommendations"].asyncio_detailed(
                    user, client=client, n=3
                ),
                "session_recommendations": ops["session_recommendations"].asyncio_detailed(
                    client=client, body=models.SessionRequest(recent_items=[item], n=3)
                ),
                "similar_items": ops["similar_items"].asyncio_detailed(item, client=client),
                "cross_sell": ops["cross_sell"].asyncio_detailed(
                    client=client, body=models.CrossSellRequest(items=[models.CartItem(item_id=item)])
                ),
                "bundles": ops["bundles"].asyncio_detailed(client=client, min_lift=0.0, min_orders=2),
                "post_events": ops["post_events"].asyncio_detailed(
                    client=client, body=models.EventsBatch(events=[event])
                ),
                "experiment_report": ops["experiment_report"].asyncio_detailed(client=client),
                "reload_model": ops["reload_model"].asyncio_detailed(client=client),
                "healthz": ops["healthz"].asyncio_detailed(client=client),
                "readyz": ops["readyz"].asyncio_detailed(client=client),
                "model_info": ops["model_info"].asyncio_detailed(client=client),
                "trending": ops["trending"].asyncio_detailed(client=client, n=3),
                "create_rule": ops["create_rule"].asyncio_detailed(
                    client=client, body=models.RuleIn(action=models.RuleInAction.HIDE, item_ids=[item])
                ),
                "list_rules": ops["list_rules"].asyncio_detailed(client=client),
                "dismissals": ops["dismissals"].asyncio_detailed(client=client),
                "kpis": ops["kpis"].asyncio_detailed(client=client),
                "reorder": ops["reorder"].asyncio_detailed(user, client=client),
            }
            assert set(calls) | {"delete_rule"} == set(ops), "an operation has no call here"
            statuses = {}
            for name, call in calls.items():
                answer = await call
                statuses[name] = answer.status_code
                assert answer.parsed is not None, f"{name}: {answer.status_code} {answer.content[:200]!r}"
            made = (await ops["list_rules"].asyncio(client=client)).rules[0].id
            statuses["delete_rule"] = (
                await ops["delete_rule"].asyncio_detailed(made, client=client)
            ).status_code
            return statuses

    statuses = asyncio.run(call_all())
    created = {"post_events": 202, "create_rule": 201, "delete_rule": 204}
    assert statuses == {name: created.get(name, 200) for name in statuses}
