"""Bundle statistics against a hand count on six orders."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from features.dataset import load_dataset
from features.io import resolve_format
from service.app import create_app
from service.config import Settings
from training.job import TrainConfig, run_training

ORDERS = {"o1": "ABC", "o2": "AB", "o3": "ABD", "o4": "AC", "o5": "BC", "o6": "D"}
PRICES = {"A": 10.0, "B": 5.0, "C": 2.0, "D": 1.0}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("tiny")
    lines = ["user_id,item_id,event_type,timestamp,order_id,quantity,price"]
    for number, (order, items) in enumerate(ORDERS.items()):
        for item in items:
            lines.append(f"u{number},{item},purchase,2024-01-0{number + 1} 10:00:00,{order},1,{PRICES[item]}")
    (root / "events.csv").write_text("\n".join(lines) + "\n")
    dataset = load_dataset(root / "events.csv", resolve_format())
    run_training(
        dataset, TrainConfig(model="popular", holdout=None), root / "bundle", {"fingerprint": "tiny"}
    )
    with TestClient(create_app(Settings(model_uri=str(root / "bundle")))) as client:
        yield client


def test_pair_bundles_match_a_hand_count(tiny: TestClient) -> None:
    # counts: A 4, B 4, C 3, D 2 orders of 6; pairs AB 3, AC 2, BC 2 (AD, BD 1: below min_orders=2)
    body = tiny.get("/v1/bundles", params={"min_lift": 0, "min_orders": 2}).json()
    got = [("".join(i["item_id"] for i in b["items"]), b) for b in body["bundles"]]
    assert [name for name, _ in got] == ["AB", "AC", "BC"]
    ab, ac, bc = (b for _, b in got)
    # AB: support 3/6; confidence 3/max(4,4); lift 3*6/(4*4); discount 5+15*(1-0.75)=8.75 -> 9.0 (to 0.5)
    assert ab["orders_with_bundle"] == 3
    assert ab["support"] == pytest.approx(0.5)
    assert ab["confidence"] == pytest.approx(0.75)
    assert ab["lift"] == pytest.approx(1.125)
    assert ab["combined_price"] == pytest.approx(15.0)
    assert ab["suggested_discount_pct"] == pytest.approx(9.0)
    assert ab["expected_revenue"] == pytest.approx(3 * 15.0 * 0.91)
    # AC: 2 orders; confidence 2/4; lift 2*6/(4*3) = 1.0; discount 12.5; revenue 2*12*0.875
    assert (ac["orders_with_bundle"], ac["confidence"], ac["lift"]) == (2, 0.5, 1.0)
    assert ac["suggested_discount_pct"] == pytest.approx(12.5)
    assert ac["expected_revenue"] == pytest.approx(21.0)
    assert bc["expected_revenue"] == pytest.approx(2 * 7.0 * 0.875)


def test_min_lift_and_min_orders_filter_bundles(tiny: TestClient) -> None:
    strong = tiny.get("/v1/bundles", params={"min_lift": 1.1, "min_orders": 2}).json()["bundles"]
    assert ["".join(i["item_id"] for i in b["items"]) for b in strong] == ["AB"]
    assert (
        tiny.get("/v1/bundles", params={"min_lift": 0, "min_orders": 3}).json()["bundles"][0]["lift"] == 1.125
    )
    # ABC is in one order only: below any min_orders the API allows
    assert tiny.get("/v1/bundles", params={"size": 3, "min_lift": 0, "min_orders": 2}).json()["bundles"] == []


def test_bundle_csv_holds_the_same_numbers(tiny: TestClient) -> None:
    text = tiny.get("/v1/bundles", params={"min_lift": 0, "min_orders": 2, "format": "csv"}).text
    rows = text.strip().splitlines()
    assert rows[1] == "A + B,A + B,10.00 + 5.00,3,0.5,0.75,1.125,15.0,9.0,40.95,,,,,"  # no costs: no margins


def test_h7_bundles_with_new_parameters_compute_nothing_sparse(
    tiny: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a bundle request recomputed the pair table")

    monkeypatch.setattr("scipy.sparse.triu", refuse)
    for min_lift in (0.0, 0.5000001, 0.5000002):
        for size in (2, 3):
            answer = tiny.get("/v1/bundles", params={"size": size, "min_lift": min_lift, "min_orders": 2})
            assert answer.status_code == 200, answer.text


def test_h7_bundles_run_on_their_own_thread_not_the_shared_pool(
    tiny: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from service.bundling import Bundler

    seen: list[str] = []
    original = Bundler.top

    def spy(self: Bundler, *args: object, **kwargs: object) -> list[dict[str, object]]:
        seen.append(threading.current_thread().name)
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Bundler, "top", spy)
    assert tiny.get("/v1/bundles", params={"min_lift": 0.25, "min_orders": 2}).status_code == 200
    assert seen and all(name.startswith("orderlift-bundles") for name in seen)


def test_l1_csv_cells_never_start_a_formula() -> None:
    from service.routes.bundles import to_csv

    item = {"item_id": "=HYPERLINK(1)", "name": "@SUM(A1)", "price": 1.0}
    bundle = {"items": [item], "orders_with_bundle": 2, "support": 0.1, "confidence": 0.5, "lift": 2.0,
              "combined_price": 1.0, "suggested_discount_pct": 5.0, "expected_revenue": 1.9}  # fmt: skip
    row = to_csv([bundle]).splitlines()[1]
    assert row.startswith("'=HYPERLINK(1),'@SUM(A1),")
