"""Cart cross-sell ranked by expected order value."""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from service.cache import cache_key
from service.deps import State, require_key
from service.errors import ERROR_RESPONSES
from service.schemas import CrossSellRequest, CrossSellResponse

router = APIRouter(
    prefix="/v1", tags=["storefront"], dependencies=[Depends(require_key)], responses=ERROR_RESPONSES
)


@router.post("/cart/cross-sell", response_model=CrossSellResponse)
async def cross_sell(state: State, body: CrossSellRequest) -> Response:
    """Suggest complements not in the cart; unknown cart items are listed, not fatal."""
    engine = state.require(body.user_id)
    cart = sorted({line.item_id for line in body.items})
    digest = hashlib.sha1("|".join(cart).encode(), usedforsecurity=False).hexdigest()[:16]
    flags = f"{body.n}:{body.include_substitutes}:{body.rank_by}"
    key = cache_key("cart", engine.version, engine.scorer.variant, digest, body.user_id or "-", flags)
    lines = [(line.item_id, line.quantity) for line in body.items]
    return await state.cached(
        key,
        lambda _: engine.crosssell.suggest(
            lines, body.n, body.user_id, body.include_substitutes, body.rank_by
        ),
        user_id=body.user_id,
        version=engine.version,
    )
