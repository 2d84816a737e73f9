"""The event and item data contract: column names, event types, default weights, reason codes.

This module is the one vocabulary of events. Training reads ``EventType`` (what a history file
holds); the service takes ``LiveEventType`` (those plus clicks and impressions) and derives from
the tables below what each live type trains as, weighs live, owns and counts in the A/B report.
A new event type is one member here and a row in each table that concerns it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = [
    "DEFAULT_WEIGHTS",
    "DISMISSING",
    "EVENT_COLUMNS",
    "EVENT_TYPE_CODES",
    "ITEM_COLUMNS",
    "LIVE_WEIGHTS",
    "OPTIONAL_EVENT_COLUMNS",
    "OWNING",
    "PIPELINE_TYPES",
    "REPORTED",
    "REQUIRED_EVENT_COLUMNS",
    "TRAINS_AS",
    "EventType",
    "LiveEventType",
    "Reason",
]


class EventType(StrEnum):
    """What a user did with an item (a dismissal: "not interested", which training leaves out)."""

    VIEW = "view"
    CART = "cart"
    PURCHASE = "purchase"
    DISMISS = "dismiss"


class LiveEventType(StrEnum):
    """What the storefront reports live: the training types, plus clicks, impressions and dismissals."""

    VIEW = "view"
    CART = "cart"
    PURCHASE = "purchase"
    CLICK = "click"
    IMPRESSION = "impression"
    DISMISS = "dismiss"  # "not interested": the item never comes back to that shopper


#: Integer code of each event type in validated frames (int8), in funnel order.
EVENT_TYPE_CODES: Final[dict[EventType, int]] = {
    EventType.VIEW: 0,
    EventType.CART: 1,
    EventType.PURCHASE: 2,
    EventType.DISMISS: 3,
}

#: Confidence added by one event of each type (before decay and quantity scaling).
DEFAULT_WEIGHTS: Final[dict[str, float]] = {"view": 1.0, "cart": 4.0, "purchase": 10.0}

#: The training event each live event becomes (clicks count as views); the rest are not trained on.
TRAINS_AS: Final[dict[LiveEventType, EventType]] = {
    LiveEventType.VIEW: EventType.VIEW,
    LiveEventType.CLICK: EventType.VIEW,
    LiveEventType.CART: EventType.CART,
    LiveEventType.PURCHASE: EventType.PURCHASE,
}
#: What each live event becomes in a training file: the weighted ones, and dismissals as they are.
PIPELINE_TYPES: Final[dict[LiveEventType, EventType]] = {
    **TRAINS_AS,
    LiveEventType.DISMISS: EventType.DISMISS,
}
#: Live events after which the user has the item: it leaves their recommendations at once.
OWNING: Final[frozenset[LiveEventType]] = frozenset({LiveEventType.CART, LiveEventType.PURCHASE})
#: Live events after which the item never comes back to the user, on any endpoint that knows them.
DISMISSING: Final[frozenset[LiveEventType]] = frozenset({LiveEventType.DISMISS})
#: The experiment report's counters and the live event each one counts.
REPORTED: Final[dict[str, LiveEventType]] = {
    "impressions": LiveEventType.IMPRESSION,
    "clicks": LiveEventType.CLICK,
    "add_to_carts": LiveEventType.CART,
}
#: Live history weight of each live event that trains: the training default of what it trains as.
LIVE_WEIGHTS: Final[dict[str, float]] = {k.value: DEFAULT_WEIGHTS[v.value] for k, v in TRAINS_AS.items()}

REQUIRED_EVENT_COLUMNS: Final[tuple[str, ...]] = ("user_id", "item_id", "timestamp")
#: Optional event columns; ``item_name`` and ``category`` describe items when there is no catalog;
#: ``order_status`` and ``cancelled_at`` mark an order the shop cancelled or refunded in full.
OPTIONAL_EVENT_COLUMNS: Final[tuple[str, ...]] = (
    "event_type",
    "order_id",
    "quantity",
    "price",
    "item_name",
    "category",
    "order_status",
    "cancelled_at",
)
EVENT_COLUMNS: Final[tuple[str, ...]] = REQUIRED_EVENT_COLUMNS + OPTIONAL_EVENT_COLUMNS

#: Columns of the optional items catalog; only ``item_id`` is required. ``cost`` (what an item costs
#: the shop) makes margins known: margin-aware cross-sell and bundle discounts that keep a margin.
ITEM_COLUMNS: Final[tuple[str, ...]] = ("item_id", "name", "category", "price", "cost", "in_stock")


class Reason(StrEnum):
    """Why a row was rejected; every rejected row carries exactly one, checked in this order."""

    MISSING_USER = "missing_user"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    MISSING_ITEM = "missing_item"
    BAD_TIMESTAMP = "bad_timestamp"
    NON_PRODUCT_ITEM = "non_product_item"
    RETURN = "return"
    CANCELLED = "cancelled"
    BAD_QUANTITY = "bad_quantity"
    BAD_PRICE = "bad_price"
    DUPLICATE = "duplicate"
