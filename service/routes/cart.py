"""Cart cross-sell ranked by expected order value."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from service.answers import suggest_for_cart
from service.deps import State, require_key
from service.errors import ERROR_RESPONSES
from service.schemas import CrossSellRequest, CrossSellResponse

router = APIRouter(
    prefix="/v1", tags=["storefront"], dependencies=[Depends(require_key)], responses=ERROR_RESPONSES
)


@router.post("/cart/cross-sell", response_model=CrossSellResponse)
async def cross_sell(state: State, body: CrossSellRequest) -> Response:
    """Suggest complements not in the cart; unknown cart items are listed, not fatal."""
    return await suggest_for_cart(state, body)
