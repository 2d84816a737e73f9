"""Fill the cache with every known user's recommendations under the current model version's keys.

Users are scored in batches (``service.export.ranked_users``: one matrix product per batch,
leaving out what each has and dismissed), answers are built exactly as the service builds them,
and each batch is written with one pipelined round trip to Redis. Users with live history (or a
generation, so events within the cache TTL) are skipped: their answer must fold those events in,
which only the service does, and a precomputed one would hide them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import redis

from service.answers import View, user_key
from service.cache_keys import generation_key, stamped, user_scope
from service.config import Settings
from service.engine import Engine
from service.export import ranked_users
from service.live import live_keys
from service.loading import load
from service.rule_store import read_rules
from service.scorer import Filters
from service.variants import parse_variants

__all__ = ["Precomputed", "precompute_users"]


@dataclass(frozen=True)
class Precomputed:
    """What a precompute run wrote."""

    users: int
    skipped: int
    seconds: float
    version: str
    variant: str


def precompute_users(
    settings: Settings,
    n: int = 10,
    batch: int | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> Precomputed:
    """Score every known user of the control variant and write their answers into Redis."""
    variant = parse_variants(settings)[0]
    engine = Engine.build(
        load(variant.uri, settings.mlflow_tracking_uri, settings.verify_artifact), settings, variant.name
    )
    scorer = engine.scorer
    client = redis.Redis.from_url(str(settings.redis_url), socket_timeout=10)
    events = client
    if settings.events_redis_url:
        events = redis.Redis.from_url(settings.events_redis_url, socket_timeout=10)
    skipped = 0
    rules, shown = View().shape(read_rules(settings), scorer, "user")  # as the service reads them
    ttl_ms = int(settings.cache_ttl_s * 1000)
    total, began = len(scorer.users), time.perf_counter()
    filters = Filters()
    try:
        for lists in ranked_users(scorer, n, rules, batch):
            users = [str(scorer.users.ids[ranked.row]) for ranked in lists]
            recent = _recently_active(client, events, users)
            pipe = client.pipeline(transaction=False)
            for ranked, user, active in zip(lists, users, recent, strict=True):
                if active:  # their answer must include live history: the service computes it
                    skipped += 1
                    continue
                items = scorer.ranked_items(ranked.items, ranked.scores, None, False)
                payload = scorer.envelope(items, "personalized", ranked.applied)
                key = user_key(scorer.version, scorer.variant, user, n, filters, False, shown)
                pipe.set(stamped(key, "0"), orjson.dumps(payload), px=ttl_ms)
            pipe.execute()
            if on_batch is not None:
                on_batch(lists[-1].row + 1, total)
    finally:
        client.close()
        events.close()
    return Precomputed(total - skipped, skipped, time.perf_counter() - began, scorer.version, scorer.variant)


def _recently_active(cache: redis.Redis, events: redis.Redis, users: list[str]) -> list[bool]:
    """Return, per user, whether they have a generation or live history (one round trip each)."""
    generations = cache.mget([generation_key(user_scope(user)) for user in users])
    pipe = events.pipeline(transaction=False)
    for user in users:
        pipe.exists(*live_keys(user))
    live = pipe.execute()
    return [g is not None or bool(n) for g, n in zip(generations, live, strict=True)]
