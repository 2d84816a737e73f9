"""Request and response models of the HTTP API (pydantic), with examples for the OpenAPI schema."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "BundleItem",
    "BundleOut",
    "BundlesResponse",
    "CartItem",
    "CrossSellItem",
    "CrossSellRequest",
    "CrossSellResponse",
    "Item",
    "RecommendationFilters",
    "RecommendationsResponse",
    "RecommendedItem",
    "SessionRequest",
    "SimilarItem",
    "SimilarResponse",
    "TrendingItem",
    "TrendingResponse",
]

#: How many items a list endpoint answers: one definition for every route, body and the fast lane.
N_DEFAULT, N_MAX = 10, 100
N_FIELD = Field(N_DEFAULT, ge=1, le=N_MAX, description=f"How many items (1-{N_MAX}).")
#: ``n`` as a query parameter (the routes' ``Annotated`` type).
NQuery = Annotated[int, Query(ge=1, le=N_MAX, description=f"How many items (1-{N_MAX}).")]
ID_MAX = 200  # characters in any user or item id
UserId = Annotated[str, Path(min_length=1, max_length=ID_MAX, examples=["u0042"])]
ItemId = Annotated[str, Path(min_length=1, max_length=ID_MAX, examples=["i0042"])]
#: The endpoints a rule may name as placements; a storefront may also name its own page slots.
ENDPOINTS = ("user", "session", "similar", "cross_sell", "trending", "bundles", "reorder")
PLACEMENT_PATTERN = r"^[a-z0-9_-]{1,40}$"
Placement = Annotated[str, StringConstraints(pattern=PLACEMENT_PATTERN)]
PlacementQuery = Annotated[
    str | None,
    Query(
        pattern=PLACEMENT_PATTERN,
        description="The page slot asking (home, product, cart...): rules may target it.",
    ),
]
#: The shopper asking, on endpoints that answer everyone alike: what they dismissed is left out.
ShopperQuery = Annotated[
    str | None,
    Query(
        min_length=1, max_length=ID_MAX, description="The shopper asking: items they dismissed are left out."
    ),
]
#: At most this many items of one category in a list (the storefront's diversity).
MaxPerCategory = Annotated[
    int | None, Query(ge=1, le=N_MAX, description="At most this many items of one category.")
]
ChannelQuery = Annotated[
    str | None,
    Query(
        pattern=PLACEMENT_PATTERN,
        description="The channel asking (web, app, email...): echoed and attributed.",
    ),
]
CHANNEL_FIELD: Any = Field(
    None,
    pattern=PLACEMENT_PATTERN,
    description="The channel asking (web, app, email...): echoed and attributed.",
)
PLACEMENT_FIELD: Any = Field(
    None, description="The page slot asking (home, product, cart...): rules may target it."
)
MAX_PER_CATEGORY_FIELD: Any = Field(
    None, ge=1, le=N_MAX, description="At most this many items of one category."
)


class Item(BaseModel):
    """An item's public facts."""

    item_id: str = Field(examples=["i0042"])
    name: str = Field(examples=["Phone case 17"])
    category: str | None = Field(None, examples=["phone_accessories"])
    price: float | None = Field(None, examples=[14.99])


class Contribution(Item):
    """A history item and what it adds to a recommendation's score."""

    contribution: float


class RecommendedItem(Item):
    """A recommended item with its score (and, with explain=true, why)."""

    score: float
    because: list[Contribution] | None = None


RULES_APPLIED: Any = Field(
    default_factory=list, description="The ids of the merchandising rules that changed this answer."
)


class RecommendationsResponse(BaseModel):
    """Recommendations for a user or a session."""

    items: list[RecommendedItem]
    source: Literal["personalized", "popular", "session", "live", "trending"] = Field(
        description="personalized: from the user's history; session: folded in from recent items; "
        "live: folded in from the events of a user the model does not know; trending: nothing is "
        "known, so what sells increasingly; popular: nothing is known and nothing trends."
    )
    rules_applied: list[str] = RULES_APPLIED
    model_version: str
    variant: str = Field(description="The A/B variant (model alias) that answered.")
    recommendation_id: str = Field(description="Send it back with events to attribute them.")
    unknown_items: list[str] | None = None
    placement: str | None = None
    channel: str | None = None


class ReorderItem(Item):
    """One of the customer's own past items, with when it falls due."""

    score: float = Field(description="orders^a x due-ness (features.reorder).")
    times_bought: int = Field(description="Distinct orders with the item.")
    last_bought: str = Field(description="ISO date of the last purchase.")
    every_days: float = Field(description="The customer's days between two orders of it (else typical).")
    due_on: str = Field(description="ISO date: the last purchase plus that interval.")


class ReorderResponse(BaseModel):
    """A customer's buy-again list: their own past items, the most due first."""

    items: list[ReorderItem]
    source: Literal["reorder", "no_history"] = Field(
        description="reorder: from the customer's purchases; no_history: nothing bought yet, so empty."
    )
    as_of: str | None = Field(description="The day due dates count from: the newest day known.")
    horizon_days: int
    rules_applied: list[str] = RULES_APPLIED
    model_version: str
    variant: str
    recommendation_id: str = Field(description="Send it back with events to attribute them.")
    placement: str | None = None
    channel: str | None = None


class RecommendationFilters(BaseModel):
    """Filters a storefront may apply."""

    model_config = ConfigDict(extra="forbid")

    category: str | None = None
    exclude: list[str] = Field(default_factory=list, max_length=1000)
    in_stock_only: bool = Field(False, strict=True)
    min_price: float | None = Field(None, ge=0, strict=True)
    max_price: float | None = Field(None, ge=0, strict=True)


class SessionRequest(BaseModel):
    """Recent items of an anonymous or new visitor (and their id, when known)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"user_id": None, "recent_items": ["i0042", "i0007"], "n": 5}]},
    )

    user_id: str | None = Field(None, min_length=1, max_length=ID_MAX)
    recent_items: list[str] = Field(default_factory=list, max_length=ID_MAX)
    n: int = N_FIELD
    filters: RecommendationFilters = Field(default_factory=RecommendationFilters)
    explain: bool = Field(False, strict=True)
    placement: Placement | None = PLACEMENT_FIELD
    channel: str | None = CHANNEL_FIELD
    max_per_category: int | None = MAX_PER_CATEGORY_FIELD


class SimilarItem(Item):
    """A related item with the statistic behind it."""

    co_count: int | None = None
    confidence: float | None = None
    lift: float | None = None
    similarity: float | None = None


class SimilarResponse(BaseModel):
    """Items related to one item."""

    item: Item
    kind: Literal["also_bought", "also_viewed", "similar"]
    items: list[SimilarItem]
    model_version: str
    rules_applied: list[str] = RULES_APPLIED
    recommendation_id: str | None = None
    placement: str | None = None
    channel: str | None = None


#: Hard ceiling of a cart's lines, before any setting: bodies are bounded before they are read.
MAX_CART_LINES = 10_000


class CartItem(BaseModel):
    """A line of the cart."""

    model_config = ConfigDict(extra="forbid")

    item_id: str = Field(min_length=1, max_length=ID_MAX)
    quantity: int = Field(1, ge=1, le=100_000, description="Units in the cart: counted in cart_value.")


class CrossSellRequest(BaseModel):
    """A cart to complete."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"items": [{"item_id": "i0042", "quantity": 1}], "n": 5}]},
    )

    items: list[CartItem] = Field(
        min_length=1,
        max_length=MAX_CART_LINES,
        description="The cart's lines; at most ORDERLIFT_MAX_CART_ITEMS distinct items (default 2,000).",
    )
    user_id: str | None = Field(None, min_length=1, max_length=ID_MAX)
    n: int = N_FIELD
    include_substitutes: bool = Field(False, strict=True)
    rank_by: Literal["model", "expected_value", "probability", "margin"] = Field(
        "model",
        description="model: the ordering training found best on held-out orders; margin: expected margin "
        "P x (price - cost), when the catalog has costs.",
    )
    placement: Placement | None = PLACEMENT_FIELD
    channel: str | None = CHANNEL_FIELD
    max_per_category: int | None = MAX_PER_CATEGORY_FIELD


class CrossSellItem(Item):
    """A complement with the numbers behind it."""

    probability: float = Field(description="Calibrated P(item is added | cart).")
    expected_value: float = Field(description="probability x price: the expected order-value gain.")
    margin: float | None = Field(None, description="price - cost, when the cost is known.")
    expected_margin: float | None = Field(None, description="probability x margin: the expected margin gain.")
    support: float
    confidence: float
    lift: float
    rank_score: float
    reason: str = Field(examples=["often bought with Phone 17"])
    because_of: str | None = None


class CrossSellResponse(BaseModel):
    """Complements for a cart."""

    items: list[CrossSellItem]
    cart_items: list[str]
    unknown_items: list[str]
    cart_value: float = Field(description="Sum of price x quantity over the known cart lines.")
    substitutes_left_out: int
    ranked_by: str
    cart_model: str = Field(description="The trained cart model that ranked the suggestions.")
    personalized: bool
    model_version: str
    variant: str
    recommendation_id: str
    rules_applied: list[str] = RULES_APPLIED
    placement: str | None = None
    channel: str | None = None


class BundleItem(Item):
    """An item of a bundle."""


class BundleOut(BaseModel):
    """A bundle with its statistics, its suggested discount and its expected revenue."""

    items: list[BundleItem]
    orders_with_bundle: int
    support: float
    confidence: float
    lift: float
    combined_price: float
    suggested_discount_pct: float = Field(description="0 when no discount keeps the minimum margin.")
    expected_revenue: float
    combined_cost: float | None = Field(None, description="With item costs known.")
    margin: float | None = Field(None, description="Combined price after the discount, minus the cost.")
    margin_pct: float | None = Field(None, description="margin / discounted price, in percent.")
    expected_margin: float | None = Field(None, description="orders_with_bundle x margin.")
    discount_note: str | None = Field(None, description="Why the discount is lower than usual, if it is.")


class BundlesResponse(BaseModel):
    """Bundles sorted by expected revenue."""

    bundles: list[BundleOut]
    size: int
    model_version: str
    rules_applied: list[str] = RULES_APPLIED
    recommendation_id: str = Field(description="Send it back with events to attribute them.")
    placement: str | None = None
    channel: str | None = None


class TrendingItem(Item):
    """An item that sells increasingly: its trend score and the counts behind it."""

    trend_score: float = Field(description="log((recent + 2) / (baseline + 2)): how fast it grows.")
    recent: float = Field(description="Purchases (+ 0.5 per cart) in the window.")
    baseline: float = Field(description="The same per window over the 28 days before it.")


class TrendingResponse(BaseModel):
    """Items whose recent purchases and carts grow fastest against their own past."""

    items: list[TrendingItem]
    source: Literal["trending"]
    category: str | None
    window_days: int
    ends_on: str | None = Field(description="The newest day counted (training data or live events).")
    model_version: str
    variant: str
    recommendation_id: str
    rules_applied: list[str] = RULES_APPLIED
    placement: str | None = None
    channel: str | None = None
