"""The one event vocabulary: every package takes its event types from features/schema.py."""

from __future__ import annotations

import ast
from pathlib import Path

from features.schema import DISMISSING, LIVE_WEIGHTS, OWNING, REPORTED, TRAINS_AS, LiveEventType

REPO = Path(__file__).resolve().parents[2]
LIVE_ONLY = {LiveEventType.CLICK.value, LiveEventType.IMPRESSION.value, LiveEventType.DISMISS.value}


def _string_constants(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def test_live_event_types_are_spelled_only_in_features_schema() -> None:
    spelled = {
        str(path.relative_to(REPO)): found
        for package in ("features", "training", "service")
        for path in sorted((REPO / package).rglob("*.py"))
        if path != REPO / "features/schema.py" and (found := _string_constants(path) & LIVE_ONLY)
    }
    assert spelled == {}


def test_the_events_api_accepts_exactly_the_live_vocabulary() -> None:
    from service.events import EventIn

    schema = EventIn.model_json_schema()
    enum = (
        schema["$defs"]["LiveEventType"]["enum"]
        if "$defs" in schema
        else schema["properties"]["type"]["enum"]
    )
    assert enum == [t.value for t in LiveEventType]


def test_every_live_type_is_trained_on_owned_dismissing_or_reported_and_weighted_when_trained() -> None:
    used = set(TRAINS_AS) | set(OWNING) | set(DISMISSING) | set(REPORTED.values())
    assert used == set(LiveEventType)
    assert set(LIVE_WEIGHTS) == {t.value for t in TRAINS_AS}
    assert LIVE_WEIGHTS["click"] == LIVE_WEIGHTS["view"]
