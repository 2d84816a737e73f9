"""One circuit breaker for every Redis client: after a failure, skip the backend for a pause.

States: closed (calls go through); open for ``retry_after_s`` after a failure (``allow`` is False,
callers answer without the backend at once instead of waiting for a timeout each); then half-open:
one call probes while the others keep skipping, and its success closes the breaker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["Breaker"]

logger = logging.getLogger(__name__)


class Breaker:
    """Open after a failure, half-open after a pause, closed by a success."""

    def __init__(
        self, name: str, retry_after_s: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name, self.retry_after_s, self.clock = name, retry_after_s, clock
        self.broken = False
        self.open_until = 0.0
        self.last_error: str | None = None
        self.failures = 0

    def allow(self) -> bool:
        """Return whether a call may go to the backend now (a half-open probe holds off the rest)."""
        now = self.clock()
        if now < self.open_until:
            return False
        if self.broken:
            self.open_until = now + self.retry_after_s
        return True

    def succeeded(self) -> None:
        """Close the breaker after a call that worked."""
        if self.broken:
            self.broken, self.open_until = False, 0.0
            logger.info("%s reachable again; breaker closed", self.name)

    def failed(self, exc: BaseException) -> bool:
        """Open the breaker for a pause; return True when this failure starts an outage."""
        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        self.open_until = self.clock() + self.retry_after_s
        if self.broken:
            logger.debug("%s still failing: %s", self.name, self.last_error)
            return False
        self.broken = True
        logger.warning("%s failed, skipping it for %.2fs: %s", self.name, self.retry_after_s, self.last_error)
        return True
