"""The event and item data contract: column names, event types, default weights, reason codes."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = [
    "DEFAULT_WEIGHTS",
    "EVENT_COLUMNS",
    "EVENT_TYPE_CODES",
    "ITEM_COLUMNS",
    "OPTIONAL_EVENT_COLUMNS",
    "REQUIRED_EVENT_COLUMNS",
    "EventType",
    "Reason",
]


class EventType(StrEnum):
    """What a user did with an item."""

    VIEW = "view"
    CART = "cart"
    PURCHASE = "purchase"


#: Integer code of each event type in validated frames (int8), in funnel order.
EVENT_TYPE_CODES: Final[dict[EventType, int]] = {
    EventType.VIEW: 0,
    EventType.CART: 1,
    EventType.PURCHASE: 2,
}

#: Confidence added by one event of each type (before decay and quantity scaling).
DEFAULT_WEIGHTS: Final[dict[str, float]] = {"view": 1.0, "cart": 4.0, "purchase": 10.0}

REQUIRED_EVENT_COLUMNS: Final[tuple[str, ...]] = ("user_id", "item_id", "timestamp")
#: Optional event columns; ``item_name`` and ``category`` describe items when there is no catalog.
OPTIONAL_EVENT_COLUMNS: Final[tuple[str, ...]] = (
    "event_type",
    "order_id",
    "quantity",
    "price",
    "item_name",
    "category",
)
EVENT_COLUMNS: Final[tuple[str, ...]] = REQUIRED_EVENT_COLUMNS + OPTIONAL_EVENT_COLUMNS

#: Columns of the optional items catalog; only ``item_id`` is required.
ITEM_COLUMNS: Final[tuple[str, ...]] = ("item_id", "name", "category", "price", "in_stock")


class Reason(StrEnum):
    """Why a row was rejected; every rejected row carries exactly one, checked in this order."""

    MISSING_USER = "missing_user"
    MISSING_ITEM = "missing_item"
    BAD_TIMESTAMP = "bad_timestamp"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    NON_PRODUCT_ITEM = "non_product_item"
    RETURN = "return"
    BAD_QUANTITY = "bad_quantity"
    BAD_PRICE = "bad_price"
    DUPLICATE = "duplicate"
