"""Fan-out of server events to connected clients, each through a bounded queue.

Every event is serialized once and offered to every client's `ClientQueue`.
A full queue sheds, in order: the oldest `transcript.partial` (droppable),
then an older `status` (coalesced, only the newest matters). If neither is
there the client is too slow to be kept without losing a final: the hub
calls its `on_overflow` (the transport closes it) instead of dropping the
event or blocking the publisher. The hub also keeps the snapshot a new client
receives in `hello`: the latest status, final transcript, intent and
recommendations.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from assistant.server.metrics import DaemonMetrics
from assistant.server.protocol import IntentEvent, Recommendations, ServerEvent, Status, TranscriptFinal

log = logging.getLogger(__name__)


@dataclass
class _Item:
    data: str
    droppable: bool
    coalesce_key: str | None


class ClientQueue:
    """A bounded outgoing queue for one client. `put` never blocks."""

    def __init__(self, max_events: int, on_overflow: Callable[[], None], metrics: DaemonMetrics | None = None):
        self.max_events = max_events
        self.on_overflow = on_overflow
        self.metrics = metrics
        self.items: deque[_Item] = deque()
        self.overflowed = False
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    def __len__(self) -> int:
        return len(self.items)

    def put(self, event: ServerEvent, data: str | None = None) -> bool:
        """Queue an event; False when the client overflowed (and is being closed)."""
        if self.overflowed:
            return False
        item = _Item(data if data is not None else event.to_json(), event.droppable, event.type if event.coalesce else None)
        if len(self.items) >= self.max_events and not self._shed():
            self.overflowed = True
            self.items.clear()
            self._room.set()  # a reader waiting for room goes on, and finds the connection closing
            self._count("disconnect")
            self.on_overflow()
            return False
        self.items.append(item)
        self._ready.set()
        return True

    def _shed(self) -> bool:
        for i, it in enumerate(self.items):
            if it.droppable:
                del self.items[i]
                self._count("partial")
                return True
        seen: set[str] = set()
        for i in range(len(self.items) - 1, -1, -1):  # keep the newest of each coalesced kind
            key = self.items[i].coalesce_key
            if key is None:
                continue
            if key in seen:
                del self.items[i]
                self._count("status")
                return True
            seen.add(key)
        return False

    def _count(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.dropped_events.inc(1, reason)

    async def get(self) -> str:
        while not self.items:
            self._ready.clear()
            await self._ready.wait()
        item = self.items.popleft()
        if len(self.items) <= self.max_events // 4:
            self._room.set()
        return item.data

    async def wait_for_room(self) -> None:
        """Until at most a quarter is queued, when half or more is: replies to a client wait for it to read."""
        if len(self.items) >= self.max_events // 2 and not self.overflowed:
            self._room.clear()
            await self._room.wait()


class Hub:
    """The set of connected clients and the latest-results snapshot."""

    SNAPSHOT_TYPES = {Status.type: "status", TranscriptFinal.type: "transcript",
                      IntentEvent.type: "intent", Recommendations.type: "recommendations"}

    def __init__(self, queue_events: int, metrics: DaemonMetrics):
        self.queue_events = queue_events
        self.metrics = metrics
        self.clients: dict[str, ClientQueue] = {}
        self.latest: dict[str, dict | None] = dict.fromkeys(self.SNAPSHOT_TYPES.values())
        # In-process observers of every published event (the MPD player, Wyoming sessions). Called on the
        # event loop; each must return at once (queue work, never wait).
        self.listeners: list[Callable[[ServerEvent], None]] = []

    def add(self, client_id: str, on_overflow: Callable[[], None]) -> ClientQueue:
        q = ClientQueue(self.queue_events, on_overflow, self.metrics)
        self.clients[client_id] = q
        return q

    def remove(self, client_id: str) -> None:
        self.clients.pop(client_id, None)

    def send(self, client_id: str, event: ServerEvent) -> None:
        """One event to one client (replies, errors about its own messages)."""
        q = self.clients.get(client_id)
        if q is not None:
            q.put(event)

    def snapshot(self) -> dict[str, dict | None]:
        return dict(self.latest)

    def publish(self, event: ServerEvent) -> None:
        """Serialize once, remember it for the snapshot, offer it to every client."""
        key = self.SNAPSHOT_TYPES.get(event.type)
        if key is not None and getattr(event, "accepted", True):  # an ignored utterance replaces nothing
            self.latest[key] = event.to_dict()
        data = event.to_json()
        for q in list(self.clients.values()):
            q.put(event, data)
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - an observer's bug must not stop the fan-out
                log.exception("event listener %r failed", listener)

    def max_queue_depth(self) -> int:
        return max((len(q) for q in self.clients.values()), default=0)
