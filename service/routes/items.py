"""Items related to an item: bought together, viewed together, or similar."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from service.answers import View, similar_to_item
from service.deps import State, require_key
from service.errors import ERROR_RESPONSES
from service.schemas import (
    N_DEFAULT,
    ChannelQuery,
    ItemId,
    MaxPerCategory,
    NQuery,
    PlacementQuery,
    ShopperQuery,
    SimilarResponse,
)
from service.scorer import SimilarKind

router = APIRouter(
    prefix="/v1", tags=["storefront"], dependencies=[Depends(require_key)], responses=ERROR_RESPONSES
)

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {**ERROR_RESPONSES[422], "description": "The item is not in the model."}
}


@router.get("/items/{item_id}/similar", response_model=SimilarResponse, responses=NOT_FOUND)
async def similar_items(
    state: State,
    item_id: ItemId,
    n: NQuery = N_DEFAULT,
    kind: Annotated[
        SimilarKind,
        Query(description="also_bought: co-purchase; also_viewed: co-view; similar: the model's similarity."),
    ] = "also_bought",
    placement: PlacementQuery = None,
    max_per_category: MaxPerCategory = None,
    user_id: ShopperQuery = None,
    channel: ChannelQuery = None,
) -> Response:
    """Return related items with the statistics behind each (never what ``user_id`` dismissed)."""
    return await similar_to_item(state, item_id, n, kind, View(placement, max_per_category, channel), user_id)
