"""Operator actions: reload the model now."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from service.deps import State, require_key
from service.errors import ERROR_RESPONSES

router = APIRouter(
    prefix="/v1/admin",
    tags=["operations"],
    dependencies=[Depends(require_key)],
    responses=ERROR_RESPONSES,
)


@router.post("/reload")
async def reload_model(state: State) -> dict[str, Any]:
    """Load every variant's current version now; a broken one leaves the old one serving."""
    outcome = await state.reload(force=True)
    return {"variants": outcome, "serving": {name: e.version for name, e in state.engines.items()}}
