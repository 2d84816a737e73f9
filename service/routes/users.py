"""Per-user and per-session recommendations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from service.answers import View, recommend_for_session, recommend_for_user, reorder_for_user
from service.deps import State, require_key
from service.errors import ERROR_RESPONSES
from service.schemas import (
    ID_MAX,
    N_DEFAULT,
    ChannelQuery,
    MaxPerCategory,
    NQuery,
    PlacementQuery,
    RecommendationsResponse,
    ReorderResponse,
    SessionRequest,
    UserId,
)
from service.scorer import Filters

router = APIRouter(
    prefix="/v1", tags=["storefront"], dependencies=[Depends(require_key)], responses=ERROR_RESPONSES
)


def _ids(values: list[str] | None) -> tuple[str, ...]:
    return tuple(v.strip() for value in values or [] for v in value.split(",") if v.strip())


@router.get("/users/{user_id}/recommendations", response_model=RecommendationsResponse)
async def user_recommendations(
    state: State,
    user_id: UserId,
    n: NQuery = N_DEFAULT,
    category: Annotated[str | None, Query(max_length=ID_MAX)] = None,
    exclude: Annotated[
        list[str] | None, Query(description="Item ids to leave out (repeat or comma-separate).")
    ] = None,
    in_stock_only: bool = False,
    min_price: Annotated[float | None, Query(ge=0)] = None,
    max_price: Annotated[float | None, Query(ge=0)] = None,
    explain: Annotated[bool, Query(description="Add the history items behind each recommendation.")] = False,
    placement: PlacementQuery = None,
    max_per_category: MaxPerCategory = None,
    channel: ChannelQuery = None,
) -> Response:
    """Recommend items the user has not bought; trending or popular items for users nothing is known about."""
    filters = Filters(category, _ids(exclude), in_stock_only, min_price, max_price)
    return await recommend_for_user(
        state, user_id, n, filters, explain, View(placement, max_per_category, channel)
    )


@router.get("/users/{user_id}/reorder", response_model=ReorderResponse)
async def reorder(
    state: State,
    user_id: UserId,
    n: NQuery = N_DEFAULT,
    horizon_days: Annotated[
        int, Query(ge=1, le=365, description="Rank by what falls due within this many days.")
    ] = 30,
    placement: PlacementQuery = None,
    max_per_category: MaxPerCategory = None,
    channel: ChannelQuery = None,
) -> Response:
    """Rank the customer's own past items by when each falls due: buy again (empty without purchases)."""
    return await reorder_for_user(state, user_id, n, horizon_days, View(placement, max_per_category, channel))


@router.post("/recommendations", response_model=RecommendationsResponse)
async def session_recommendations(state: State, body: SessionRequest) -> Response:
    """Recommend from a session's recent items (folded into the model); popular when nothing is known."""
    f = body.filters
    filters = Filters(f.category, tuple(f.exclude), f.in_stock_only, f.min_price, f.max_price)
    return await recommend_for_session(state, body, filters)
