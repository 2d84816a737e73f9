"""Merchandising rules: what a marketer pins, boosts, buries and hides, and how an answer obeys them.

A ``RuleBook`` is the rule set in force (every worker reads the same one from ``service.rule_store``)
and its ``version``, which changes with every edit. For one answer, ``RuleBook.shape`` compiles the
rules that apply to it into a ``ListRules``: the rules active now (``starts_at <= now < ends_at``)
whose placements are empty or name the endpoint or the request's page slot, turned into item rows
of the answering model's catalog (an ``Adjustment``: hidden rows; a factor per scaled row, the
product when several rules scale one item; pins by position, the first rule's when two pin one
item), plus the storefront's ``max_per_category``. Rules apply after scoring and before the top-k.

``RuleBook.key(now)`` is ``{version}.{epoch}``, with ``epoch`` the number of window edges (starts
and ends) already passed: it is part of every cache key, so an answer computed under another rule
set, or before a window opened or closed, is never served.

An answer says which rules changed it (``rules_applied``): those whose target items are in the
answer or would have been without the rules, when the two lists differ.
"""

from __future__ import annotations

import bisect
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

import numpy as np
from cachetools import LRUCache

from service.errors import InvalidRequest
from service.ops_schemas import Rule, RuleIn
from training.models.adjustment import NO_ADJUSTMENT, Adjustment, ranked, reorder

__all__ = ["PLAIN", "ListRules", "RuleBook", "checked_rule"]

DEFAULT_FACTORS = {"boost": 2.0, "bury": 0.5}
MEMO_ENTRIES = 512


def _no_rows() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class ListRules:
    """How one answer's list is shaped beyond the model: the rules in force for it and the cap."""

    adjustment: Adjustment = NO_ADJUSTMENT
    ids: tuple[str, ...] = ()  # the rules in force, in order
    rules_of: dict[int, tuple[int, ...]] = field(default_factory=dict)  # row: the rules (into ids) naming it
    cap: int | None = None

    @property
    def active(self) -> bool:
        """Return whether any rule applies to this answer."""
        return self.adjustment.active

    def capped(self, cap: int | None) -> ListRules:
        """Return these rules with the storefront's ``max_per_category``."""
        return self if cap == self.cap else replace(self, cap=cap)

    def top(
        self, scores: np.ndarray, n: int, categories: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Return the best ``n`` rows of dense scores, their scores, and the rules that changed them."""
        rows, values, plain = ranked(scores, n, self.adjustment, categories, self.cap)
        return rows, values, self.applied(rows, plain) if self.active else []

    def reorder(
        self, rows: np.ndarray, keys: np.ndarray, n: int, categories: np.ndarray | None
    ) -> tuple[np.ndarray, list[str]]:
        """Return positions into a ranked list after the rules and the cap, and the rules that changed it."""
        at = reorder(rows, keys, n, self.adjustment, categories, self.cap)
        if not self.active:
            return at, []
        plain = reorder(rows, keys, n, NO_ADJUSTMENT, categories, self.cap)
        return at, self.applied(rows[at], rows[plain])

    def applied(self, final: np.ndarray, plain: np.ndarray) -> list[str]:
        """Return the ids of the rules that changed an answer (``plain``: the list without rules)."""
        if not self.ids or np.array_equal(final, plain):
            return []
        shown = set(final.tolist()) | set(plain.tolist())  # a few rows: each looked up in the targets
        found = {k for row in shown for k in self.rules_of.get(row, ())}
        return [self.ids[k] for k in sorted(found)]


PLAIN = ListRules()


class Catalogue(Protocol):
    """What rule compilation needs of a catalog: item and category lookups (``scorer.Catalog``)."""

    lookup: dict[str, int]
    category_lookup: dict[str, int]
    category_codes: np.ndarray


def _now() -> datetime:
    return datetime.now(UTC)


def checked_rule(given: RuleIn, catalog: Catalogue, now: datetime | None = None) -> Rule:
    """Return the rule to store, with its id; raise InvalidRequest naming the first bad field."""
    now = now or _now()
    if not given.item_ids and given.category is None:
        raise InvalidRequest(
            "a rule needs a target: item_ids, a category or both", field="item_ids", value=[]
        )
    if given.action == "pin":
        if given.position is None:
            raise InvalidRequest(
                "a pin needs a position (1 is the first place)", field="position", value=None
            )
        if given.category is not None or not given.item_ids:
            raise InvalidRequest("a pin puts item_ids at a position; it takes no category",
                                 field="category", value=given.category)  # fmt: skip
    elif given.position is not None:
        raise InvalidRequest(f"only a pin takes a position, not a {given.action}", field="position",
                             value=given.position)  # fmt: skip
    factor = given.factor
    if given.action in DEFAULT_FACTORS:
        factor = DEFAULT_FACTORS[given.action] if factor is None else factor
        if (factor > 1) != (given.action == "boost") or factor == 1:
            wanted = "above 1" if given.action == "boost" else "below 1"
            raise InvalidRequest(f"a {given.action}'s factor must be {wanted}", field="factor", value=factor)
    elif factor is not None:
        raise InvalidRequest(f"a {given.action} takes no factor", field="factor", value=factor)
    if given.starts_at and given.ends_at and given.ends_at <= given.starts_at:
        raise InvalidRequest(
            "the rule ends before it starts", field="ends_at", value=given.ends_at.isoformat()
        )
    if given.ends_at is not None and given.ends_at <= now:
        raise InvalidRequest(
            "the rule would already be over", field="ends_at", value=given.ends_at.isoformat()
        )
    unknown = [item for item in given.item_ids if item not in catalog.lookup]
    if unknown:
        raise InvalidRequest(
            f"unknown item ids: {', '.join(unknown[:10])}", field="item_ids", value=unknown[:10]
        )
    if given.category is not None and given.category not in catalog.category_lookup:
        raise InvalidRequest(f"unknown category {given.category!r}", field="category", value=given.category)
    if len(set(given.item_ids)) != len(given.item_ids):
        raise InvalidRequest("an item id is listed twice", field="item_ids", value=given.item_ids[:10])
    fields = given.model_dump() | {"factor": factor}
    return Rule(**fields, id="r" + secrets.token_hex(6), created_at=now)


@dataclass
class RuleBook:
    """The rule set in force (``version`` changes with every edit) and its compiled adjustments."""

    rules: tuple[Rule, ...] = ()
    version: int = 0
    _edges: list[datetime] = field(init=False, repr=False)
    _memo: LRUCache[tuple[object, ...], ListRules] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        edges = [t for rule in self.rules for t in (rule.starts_at, rule.ends_at) if t is not None]
        self._edges = sorted(edges)
        self._memo = LRUCache(MEMO_ENTRIES)

    def key(self, now: datetime | None = None) -> str:
        """Return the cache-key part that changes with the rules in force: ``{version}.{epoch}``."""
        return f"{self.version}.{bisect.bisect_right(self._edges, now or _now())}"

    def active(self, endpoint: str, placement: str | None, now: datetime) -> list[Rule]:
        """Return the rules that apply to an answer of ``endpoint`` for ``placement`` at ``now``."""
        return [
            rule
            for rule in self.rules
            if (rule.starts_at is None or rule.starts_at <= now)
            and (rule.ends_at is None or now < rule.ends_at)
            and (not rule.placements or endpoint in rule.placements or placement in rule.placements)
        ]

    def shape(
        self,
        catalog: Catalogue,
        version: str,
        endpoint: str,
        placement: str | None = None,
        cap: int | None = None,
    ) -> ListRules:
        """Return how an answer of ``endpoint`` (for ``placement``) by model ``version`` is shaped now."""
        if not self.rules:
            return PLAIN.capped(cap)
        now = _now()
        memo = (version, endpoint, placement, self.key(now))
        found = self._memo.get(memo)
        if found is None:
            found = self._memo[memo] = compile_rules(self.active(endpoint, placement, now), catalog)
        return found.capped(cap)


def _targets(rule: Rule, catalog: Catalogue) -> np.ndarray:
    """Return the rows a rule targets (its items in order, then its category's items)."""
    rows = [catalog.lookup[i] for i in rule.item_ids if i in catalog.lookup]
    if rule.category is not None:
        code = catalog.category_lookup.get(rule.category)
        if code is not None:
            rows += np.flatnonzero(catalog.category_codes == code).tolist()
    return np.array(list(dict.fromkeys(rows)), dtype=np.int64)


def compile_rules(rules: list[Rule], catalog: Catalogue) -> ListRules:
    """Turn the rules in force into item rows of one catalog (an ``Adjustment``)."""
    if not rules:
        return PLAIN
    hidden, scaled, factors = [_no_rows()], [_no_rows()], [np.zeros(0)]
    pins: dict[int, int] = {}  # row: position, the first rule's
    targets = []
    for rule in rules:
        rows = _targets(rule, catalog)
        targets.append(rows)
        if rule.action == "hide":
            hidden.append(rows)
        elif rule.action == "pin":
            assert rule.position is not None
            for offset, row in enumerate(rows.tolist()):  # a pin lists a few items
                pins.setdefault(row, rule.position - 1 + offset)
        else:
            scaled.append(rows)
            factors.append(np.full(len(rows), float(rule.factor or 1.0)))
    every, each = np.concatenate(scaled), np.concatenate(factors)
    order = np.argsort(every, kind="stable")
    rows, starts = np.unique(every[order], return_index=True)
    adjustment = Adjustment(
        hidden=np.unique(np.concatenate(hidden)),
        scaled=rows,
        factors=np.multiply.reduceat(each[order], starts)
        if len(rows)
        else np.zeros(0),  # several rules: the product
        pins=tuple(sorted(((p, r) for r, p in pins.items()), key=lambda pin: pin[0])),
    )
    grouped: dict[int, list[int]] = {}
    for k, rows in enumerate(targets):
        for row in rows.tolist():  # once per rule set and placement, not per request
            grouped.setdefault(row, []).append(k)
    rules_of = {row: tuple(ks) for row, ks in grouped.items()}
    return ListRules(adjustment, tuple(r.id for r in rules), rules_of)
