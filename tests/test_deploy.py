"""The container recipe: hadolint-clean, its entrypoint runs outside Docker, compose holds together."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import yaml

from tests.harness import Server

REPO = Path(__file__).resolve().parents[1]
HADOLINT = Path(sys.executable).with_name("hadolint")


def test_the_dockerfile_passes_hadolint_with_no_warnings() -> None:
    done = subprocess.run(
        [str(HADOLINT), "--no-color", str(REPO / "Dockerfile")], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.strip() == "", done.stdout


def test_the_service_image_runs_as_non_root_with_a_healthcheck_and_one_blas_thread() -> None:
    text = (REPO / "Dockerfile").read_text()
    service = text[text.index("AS service") :]
    assert "USER 10001" in service and "HEALTHCHECK" in service and "/healthz" in service
    assert "OPENBLAS_NUM_THREADS=1" in text
    assert "training-build" not in service  # the service image has no full MLflow (no UI)


def test_the_train_requirements_match_the_train_extra() -> None:
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["train"]
    listed = (REPO / "deploy" / "requirements-train.txt").read_text().split()
    assert sorted(listed) == sorted(extra)


def test_the_images_entrypoint_command_serves_outside_docker(artifact_dir: Path) -> None:
    entry = re.findall(r"^ENTRYPOINT (\[.*\])$", (REPO / "Dockerfile").read_text(), flags=re.M)[-1]
    command = json.loads(entry)
    assert command[:2] == ["orderlift", "serve"]
    server = Server({"ORDERLIFT_MODEL_URI": str(artifact_dir)})
    args = [str(Path(sys.executable).with_name("orderlift")), *command[1:]]
    args[args.index("0.0.0.0")] = "127.0.0.1"
    args[args.index("8000")] = str(server.port)
    proc = subprocess.Popen(args, cwd=REPO, env=server.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{server.url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read().decode()[-2000:])  # type: ignore[union-attr]
            time.sleep(0.1)
        body = httpx.get(f"{server.url}/readyz", timeout=5.0).json()
        assert body["ready"] is True, body
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_compose_runs_redis_mlflow_a_training_job_and_two_service_replicas() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    assert {"redis", "mlflow", "train", "service", "lb"} <= set(services)
    assert services["service"]["deploy"]["replicas"] == 2
    assert services["service"]["environment"]["ORDERLIFT_REDIS_URL"].startswith("redis://redis")
    assert services["service"]["depends_on"]["train"]["condition"] == "service_completed_successfully"
    assert "--backend-store-uri=sqlite:////mlflow/mlflow.db" in services["mlflow"]["command"]
    assert os.path.exists(REPO / "deploy" / "nginx.conf")


def test_c1_compose_never_publishes_mlflow_nor_runs_it_as_root_or_for_any_host() -> None:
    mlflow = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]["mlflow"]
    assert "ports" not in mlflow, "MLflow has no auth: it stays on the compose network"
    assert str(mlflow.get("user", "")) not in ("0", "root")
    assert not any(arg.startswith("--allowed-hosts=*") for arg in mlflow["command"])


def test_m10_m12_nginx_keeps_metrics_inside_and_limits_each_address() -> None:
    conf = (REPO / "deploy" / "nginx.conf").read_text()
    assert re.search(r"location = /metrics \{ return 403; \}", conf)
    assert "limit_req_zone $binary_remote_addr" in conf and "limit_req_status 429;" in conf


def test_h1_compose_refuses_to_start_the_service_without_keys() -> None:
    env = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]["service"]["environment"]
    assert re.fullmatch(r"\$\{ORDERLIFT_API_KEYS:\?.+\}", env["ORDERLIFT_API_KEYS"])
    assert env["ORDERLIFT_ENVIRONMENT"] == "production"
