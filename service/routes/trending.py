"""Trending items: what sells increasingly, per category."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from service.answers import View, trending_items
from service.deps import State, require_key
from service.errors import ERROR_RESPONSES
from service.schemas import (
    ID_MAX,
    N_DEFAULT,
    ChannelQuery,
    MaxPerCategory,
    NQuery,
    PlacementQuery,
    ShopperQuery,
    TrendingResponse,
)

router = APIRouter(
    prefix="/v1", tags=["storefront"], dependencies=[Depends(require_key)], responses=ERROR_RESPONSES
)


@router.get("/trending", response_model=TrendingResponse)
async def trending(
    state: State,
    n: NQuery = N_DEFAULT,
    category: Annotated[str | None, Query(max_length=ID_MAX, description="Only this category.")] = None,
    window_days: Annotated[
        int | None, Query(ge=1, le=28, description="Days compared with the 28 before them (default 7).")
    ] = None,
    placement: PlacementQuery = None,
    max_per_category: MaxPerCategory = None,
    user_id: ShopperQuery = None,
    channel: ChannelQuery = None,
) -> Response:
    """Return the in-stock items whose recent purchases and carts grow fastest against their own past."""
    window = window_days or state.settings.trending_window_days
    return await trending_items(
        state, n, category, window, View(placement, max_per_category, channel), user_id
    )
