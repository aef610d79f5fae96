"""How much of CloudTrail's LookupEvents rate one classifier may use, and how it backs off when throttled.

LookupEvents allows 2 requests per second per account and region, shared by everything in the account. With
provenance captured at launch (``flopsmeter.service.provenance``) it is only the fallback, but the fallback must
not turn a burst of jobs into a storm of throttled calls. The budget is kept simple, and is documented here:

* **pace**: a token bucket per execution environment at ``rate_per_second`` (default 0.4/s, i.e. CloudTrail's 2/s
  shared by the stack's default event-source MaximumConcurrency of 5 environments), so concurrent invocations
  together stay under the account's limit without talking to each other;
* **cap**: at most ``max_calls`` LookupEvents calls per job lookup (pages included);
* **back-off**: a ``ThrottlingException`` (after botocore's own retries) waits ``base * 2**attempt`` seconds with
  full jitter, at most ``max_retries`` times;
* **bounded wait**: no single lookup waits more than ``max_wait_seconds`` in total for tokens and back-offs.

When the budget runs out the lookup raises ``CloudTrailThrottled`` (transient): the message is retried later and
the record is never failed, nor marked ``not_found``, because of throttling (the service writes ``not_found`` only
after its CloudTrail wait has passed). ``clock`` and ``sleep`` are injectable: the scale benchmark runs on
simulated time.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from flopsmeter.errors import CloudTrailThrottled

CLOUDTRAIL_LOOKUP_RATE_PER_SECOND = 2.0  # per account and region (CloudTrail quotas)
DEFAULT_CONCURRENCY = 5  # the stack's default classifier event-source MaximumConcurrency


@dataclass
class LookupBudget:
    rate_per_second: float = CLOUDTRAIL_LOOKUP_RATE_PER_SECOND / DEFAULT_CONCURRENCY
    burst: float = 2.0
    max_calls: int = 40
    max_retries: int = 4
    backoff_base_seconds: float = 1.0
    max_wait_seconds: float = 10.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random
    _tokens: float = field(default=-1.0, init=False)
    _stamp: float = field(default=0.0, init=False)

    def lookup(self) -> LookupAllowance:
        """The allowance of one job's lookup (its own call cap and wait bound)."""
        return LookupAllowance(self)

    def wait_needed(self) -> float:
        """Seconds until the next token (0 when one is there); refills the bucket first."""
        now = self.clock()
        if self._tokens < 0:
            self._tokens, self._stamp = self.burst, now
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate_per_second)
        self._stamp = now
        return max(0.0, (1.0 - self._tokens) / self.rate_per_second)

    def take(self) -> float:
        """Wait for one token and spend it; returns the seconds waited."""
        waited = self.wait_needed()
        if waited > 0:
            self.sleep(waited)
            self.wait_needed()
        self._tokens = max(0.0, self._tokens - 1.0)
        return waited


@dataclass
class LookupAllowance:
    budget: LookupBudget
    calls: int = 0
    retries: int = 0
    waited: float = 0.0

    def before_call(self, what: str) -> None:
        """Spend one call of the cap and one token; ``CloudTrailThrottled`` when either bound is reached."""
        if self.calls >= self.budget.max_calls:
            raise CloudTrailThrottled(f"{what}: {self.calls} LookupEvents calls, the cap of one lookup; retry later")
        if self.waited + self.budget.wait_needed() > self.budget.max_wait_seconds:
            raise CloudTrailThrottled(f"{what}: LookupEvents budget exhausted after {self.waited:.1f}s; retry later")
        self.waited += self.budget.take()
        self.calls += 1

    def after_throttle(self, what: str) -> None:
        """Back off (jittered exponential) after a ThrottlingException; ``CloudTrailThrottled`` when out of tries."""
        if self.retries >= self.budget.max_retries:
            raise CloudTrailThrottled(f"{what}: still throttled after {self.retries} back-offs; retry later")
        delay = self.budget.jitter() * self.budget.backoff_base_seconds * 2**self.retries
        if self.waited + delay > self.budget.max_wait_seconds:
            raise CloudTrailThrottled(f"{what}: throttled; the bounded wait of one lookup is spent; retry later")
        self.retries += 1
        self.budget.sleep(delay)
        self.waited += delay
