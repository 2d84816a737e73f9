"""Request and response models of the HTTP API (pydantic), with examples for the OpenAPI schema."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BundleItem",
    "BundleOut",
    "BundlesResponse",
    "CartItem",
    "CrossSellItem",
    "CrossSellRequest",
    "CrossSellResponse",
    "EventError",
    "EventsAccepted",
    "Health",
    "Item",
    "ModelInfo",
    "Ready",
    "RecommendationFilters",
    "RecommendationsResponse",
    "RecommendedItem",
    "SessionRequest",
    "SimilarItem",
    "SimilarResponse",
]

#: How many items a list endpoint answers: one definition for every route, body and the fast lane.
N_DEFAULT, N_MAX = 10, 100
N_FIELD = Field(N_DEFAULT, ge=1, le=N_MAX, description=f"How many items (1-{N_MAX}).")
#: ``n`` as a query parameter (the routes' ``Annotated`` type).
NQuery = Annotated[int, Query(ge=1, le=N_MAX, description=f"How many items (1-{N_MAX}).")]
ID_MAX = 200  # characters in any user or item id
UserId = Annotated[str, Path(min_length=1, max_length=ID_MAX, examples=["u0042"])]
ItemId = Annotated[str, Path(min_length=1, max_length=ID_MAX, examples=["i0042"])]


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


class RecommendationsResponse(BaseModel):
    """Recommendations for a user or a session."""

    items: list[RecommendedItem]
    source: Literal["personalized", "popular", "session", "live"] = Field(
        description="personalized: from the user's history; session: folded in from recent items; "
        "live: folded in from the events of a user the model does not know; popular: nothing is known."
    )
    model_version: str
    variant: str = Field(description="The A/B variant (model alias) that answered.")
    recommendation_id: str = Field(description="Send it back with events to attribute them.")
    unknown_items: list[str] | None = None


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
    rank_by: Literal["model", "expected_value", "probability"] = Field(
        "model", description="model: the ordering training found best on held-out orders."
    )


class CrossSellItem(Item):
    """A complement with the numbers behind it."""

    probability: float = Field(description="Calibrated P(item is added | cart).")
    expected_value: float = Field(description="probability x price: the expected order-value gain.")
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
    suggested_discount_pct: float
    expected_revenue: float


class BundlesResponse(BaseModel):
    """Bundles sorted by expected revenue."""

    bundles: list[BundleOut]
    size: int
    model_version: str


class ModelInfo(BaseModel):
    """What is being served."""

    version: str
    source: str
    trained_at: str | None
    model: dict[str, object]
    metrics: dict[str, object]
    data_fingerprint: str | None
    counts: dict[str, object]


class EventError(BaseModel):
    """Why one event of a batch was refused."""

    index: int
    field: str
    reason: str


class EventsAccepted(BaseModel):
    """What happened to a batch of events."""

    accepted: int = Field(description="Newly logged events.")
    duplicates: int = Field(description="Events whose event_id was logged before (not counted twice).")
    rejected: int
    clamped: int = Field(
        0,
        description="Events whose timestamp was outside [now - 30 days, now + 5 min], set to the bound.",
    )
    errors: list[EventError]


class Health(BaseModel):
    """The process is alive."""

    status: Literal["ok"] = "ok"


class Ready(BaseModel):
    """Whether the service can answer; with an admin key (or no keys), the state of what it depends on."""

    ready: bool
    model_version: str | None
    details: str | None = None
    model_error: str | None = None
    variants: dict[str, object] | None = None
    last_reload: dict[str, object] | None = None
    events: dict[str, object] | None = None
    rate_limits: dict[str, object] | None = None
    counters: dict[str, int] | None = None
    cache: dict[str, object] | None = None
