"""What `convene run` counts for operators: a port the core and the adapters report to.

Labels are fixed words (a platform, a kind of acknowledgement, a timer kind, ``failed``/``offline``)
and never an id, a channel or a text, so no series can tell who did what. The Prometheus
implementation lives in ``adapters/ops.py``: the core stays free of exporter libraries, and a
process that serves no metrics (tests, `convene console`, the demo) loads none.
"""

from __future__ import annotations

from typing import Literal, Protocol

AckKind = Literal["command", "click", "form", "event"]
FailureKind = Literal["failed", "offline"]


class Metrics(Protocol):
    def ack(self, platform: str, kind: AckKind) -> None:
        """A platform request was acknowledged (Slack's ack, Discord's first interaction response)."""

    def ballot_batch(self, size: int) -> None:
        """A batch of ballots (or deck moves) committed in one transaction."""

    def delivered(self, platform: str) -> None:
        """The relay delivered an outbox row."""

    def delivery_failed(self, platform: str, why: FailureKind) -> None:
        """A delivery attempt failed (it is retried with backoff) or found the platform offline."""

    def timer_fired(self, kind: str) -> None:
        """A timer (a phase deadline, a reminder, ...) did its work."""


class NoMetrics:
    """Counts nothing: the default wherever no exporter is configured."""

    def ack(self, platform: str, kind: AckKind) -> None:
        pass

    def ballot_batch(self, size: int) -> None:
        pass

    def delivered(self, platform: str) -> None:
        pass

    def delivery_failed(self, platform: str, why: FailureKind) -> None:
        pass

    def timer_fired(self, kind: str) -> None:
        pass


NO_METRICS: Metrics = NoMetrics()
