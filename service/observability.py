"""Request ids, JSON access logs and Prometheus metrics, as one pure ASGI middleware.

Only request counts and latencies are recorded on the request path; everything else (cache hits
and errors, events, reloads, model versions) is read from the service state when /metrics is
scraped. Run one worker per container and scale with replicas: each process serves its own metrics.
"""

from __future__ import annotations

import io
import logging
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["JsonFormatter", "Metrics", "Observability", "configure_logging"]

access = logging.getLogger("orderlift.access")

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[..., Any]

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # others: "other"
SLOW_S = 0.1  # with ORDERLIFT_ACCESS_LOG=errors, requests slower than this are still logged
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra fields given to the logger are included."""

    FIELDS = ("request_id", "method", "route", "status", "latency_ms", "model_version", "variant")

    _second, _stamp = -1, ""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as JSON (orjson; the timestamp's seconds are formatted once per second)."""
        second = int(record.created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        out: dict[str, Any] = {
            "ts": f"{self._stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out |= {name: getattr(record, name) for name in self.FIELDS if hasattr(record, name)}
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class _BufferedLines(logging.StreamHandler):
    """Write lines to stderr through a 64 KiB buffer: flushed twice a second, at once from WARNING up.

    A write per access line was a system call per request; buffered, the lines cost their
    formatting only. At exit ``logging.shutdown`` flushes what is left.
    """

    def __init__(self) -> None:
        raw = io.BufferedWriter(io.FileIO(os.dup(sys.stderr.fileno()), "w"), 1 << 16)
        super().__init__(io.TextIOWrapper(raw, encoding="utf-8", errors="replace"))
        threading.Thread(target=self._tick, name="log-flush", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + "\n")
            if record.levelno >= logging.WARNING:
                self.stream.flush()
        except Exception:  # as logging does: a broken stream never breaks the request
            self.handleError(record)

    def _tick(self) -> None:
        while True:
            time.sleep(0.5)
            self.flush()


def configure_logging(level: str = "INFO") -> None:
    """Send every log record to stderr as JSON lines (buffered: see ``_BufferedLines``).

    Records skip what the JSON lines never show (the caller's frame, thread and process), as the
    logging HOWTO's "Optimization" section advises: a line per request then costs a few microseconds.
    """
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = _BufferedLines()
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.Formatter.converter = time.gmtime


class _StateCollector(Collector):
    """Read the service state at scrape time."""

    def __init__(self, state_of: Callable[[], Any]) -> None:
        self.state_of = state_of

    def collect(self) -> Iterator[Metric]:
        """Yield cache, event, reload, fallback and model-version metrics."""
        state = self.state_of()
        if state is None:
            return
        cache = state.cache.state()
        lookups = CounterMetricFamily(
            "orderlift_cache_operations", "Cache operations", labels=["backend", "result"]
        )
        for result in ("hits", "misses", "errors", "skipped", "sets"):
            lookups.add_metric([cache.backend, result], cache.stats.get(result, 0))
        yield lookups
        yield GaugeMetricFamily(
            "orderlift_cache_healthy", "1 when the cache backend answers", value=int(cache.healthy)
        )
        counters = state.counters
        events = CounterMetricFamily("orderlift_events", "Events received", labels=["outcome"])
        for outcome in ("accepted", "rejected", "duplicate"):
            events.add_metric([outcome], counters.get(f"events_{outcome}", 0))
        yield events
        yield CounterMetricFamily("orderlift_reloads", "Models swapped in", value=counters.get("reloads", 0))
        yield CounterMetricFamily(
            "orderlift_reloads_failed",
            "Reloads refused (old model kept)",
            value=counters.get("reloads_failed", 0),
        )
        for source in ("popular", "trending"):
            yield CounterMetricFamily(
                f"orderlift_fallback_{source}",
                f"Answers from the {source} list (nothing known about the shopper)",
                value=counters.get(f"fallback_{source}", 0),
            )
        info = InfoMetricFamily("orderlift_model", "The model each variant serves", labels=["variant"])
        for name, engine in state.engines.items():
            info.add_metric([name], {"version": engine.version, "kind": str(engine.loaded.model.kind)})
        yield info
        yield GaugeMetricFamily(
            "orderlift_model_loaded", "1 when a model is loaded", value=int(bool(state.engines))
        )


class Metrics:
    """The app's Prometheus registry: request metrics plus the state read at scrape time."""

    def __init__(self, state_of: Callable[[], Any]) -> None:
        disable_created_metrics()
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "orderlift_requests", "HTTP requests", ["route", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "orderlift_request_seconds",
            "HTTP latency",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StateCollector(state_of))


class Observability:
    """Tag each request with an id, time it, count it, and log it as one JSON line."""

    def __init__(self, app: ASGIApp, metrics: Metrics, log_all: bool = True) -> None:
        self.app = app
        self.requests, self.latency = metrics.requests, metrics.latency
        self.log_all = log_all
        self._counts: dict[tuple[str, str, int], Any] = {}  # label children, looked up once each
        self._latencies: dict[str, Any] = {}

    def _record(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count the request and observe its latency."""
        count = self._counts.get((route, method, status))
        if count is None:
            count = self._counts[route, method, status] = self.requests.labels(route, method, str(status))
        latency = self._latencies.get(route)
        if latency is None:
            latency = self._latencies[route] = self.latency.labels(route)
        count.inc()
        latency.observe(seconds)

    async def __call__(self, scope: Scope, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        request_id = _header(scope, b"x-request-id") or secrets.token_hex(16)
        facts: dict[str, Any] = {"status": 500, "model_version": None}

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                facts["status"] = message["status"]
                headers = list(message.get("headers", []))
                facts["model_version"] = next(
                    (v.decode() for k, v in headers if k == b"x-model-version"), None
                )
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, tagged)
        finally:
            seconds = time.perf_counter() - began
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in METHODS else "other"
            self._record(route, method, facts["status"], seconds)
            if self.log_all or facts["status"] >= 400 or seconds > SLOW_S:
                access.info(
                    "request",
                    extra={
                        "request_id": request_id,
                        "method": method,
                        "route": route,
                        "status": facts["status"],
                        "latency_ms": round(seconds * 1000, 3),
                        "model_version": facts["model_version"],
                    },
                )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            text = value.decode("latin-1")[:200]
            return text if text.isprintable() else None
    return None
