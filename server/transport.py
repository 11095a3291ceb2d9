"""Waitress with a deadline on how long a request may take to arrive (the slow-client, "slowloris" guard).

Waitress closes a connection only after `channel_timeout` seconds with no bytes at all, so a client that
trickles a byte every few seconds keeps a connection forever, and a few hundred of them use up the
connection limit. Here every request must arrive completely (headers and body) within a grace period plus
the time its bytes need at a minimum rate, like Apache's mod_reqtimeout; a late one gets a JSON 408 and its
connection is closed. Requests already received (being scored or answered) are never cut off.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from waitress.channel import HTTPChannel

MIN_UPLOAD_BYTES_PER_S = 64 * 1024  # a 64 MB upload may take about 17 minutes; a trickle of bytes may not


@dataclass(frozen=True)
class ArrivalDeadline:
    """A request may take `grace_s` plus its size at `min_bytes_per_s` to arrive."""

    grace_s: float
    min_bytes_per_s: float = MIN_UPLOAD_BYTES_PER_S

    def allowed_s(self, received_bytes: int) -> float:
        return self.grace_s + received_bytes / self.min_bytes_per_s


class DeadlineChannel(HTTPChannel):
    """An HTTP channel that knows when the request it is reading started to arrive."""

    deadline: ArrivalDeadline  # set on the subclass made by `deadline_channel`
    arrival_started: float | None = None
    arrival_bytes = 0

    def received(self, data):
        if data and self.request is None and self.arrival_started is None:
            self.arrival_started = time.monotonic()
        self.arrival_bytes += len(data)
        result = super().received(data)
        if self.request is None:  # nothing partial left: the next request starts its own clock
            self.arrival_started, self.arrival_bytes = None, 0
        return result

    def overdue(self, now: float) -> bool:
        """True when a request is still arriving past its deadline (and nothing else is in progress)."""
        if self.arrival_started is None or self.requests or self.will_close or self.close_when_flushed:
            return False
        return now - self.arrival_started > self.deadline.allowed_s(self.arrival_bytes)

    def refuse_late_request(self) -> None:
        """Answer 408 in JSON and close once it is sent; runs on the I/O thread, no task writes here."""
        body = json.dumps(
            {
                "error": {
                    "code": "request_timeout",
                    "message": f"the request did not arrive within {self.deadline.grace_s:g} s "
                    f"(plus 1 s per {self.deadline.min_bytes_per_s / 1024:g} KiB); send it faster",
                }
            }
        ).encode()
        head = (
            "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        with self.outbuf_lock:
            self.outbufs[-1].append(head + body)
            self.current_outbuf_count += len(head) + len(body)
            self.total_outbufs_len += len(head) + len(body)
        self.request = None
        self.arrival_started = None
        self.close_when_flushed = True


def deadline_channel(deadline: ArrivalDeadline) -> type[DeadlineChannel]:
    """A channel class bound to `deadline` (waitress builds channels from a class, not a factory)."""
    return type("BoundDeadlineChannel", (DeadlineChannel,), {"deadline": deadline})


def enforce_arrival_deadline(server, deadline: ArrivalDeadline) -> None:
    """Make every listening socket of a waitress server (before `run()`) enforce `deadline`."""
    channel_class = deadline_channel(deadline)
    listeners = [server] if hasattr(server, "channel_class") else list(server.map.values())
    for listener in listeners:
        if not hasattr(listener, "maintenance"):
            continue  # the map also holds the trigger
        listener.channel_class = channel_class
        listener.maintenance = _with_deadlines(listener, listener.maintenance)


def _with_deadlines(listener, maintenance):
    def check(now):
        maintenance(now)
        clock = time.monotonic()
        for channel in list(listener.active_channels.values()):
            if isinstance(channel, DeadlineChannel) and channel.overdue(clock):
                channel.refuse_late_request()

    return check
