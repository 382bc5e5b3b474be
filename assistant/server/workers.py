"""Single-thread workers that keep blocking work off the event loop.

`Worker` wraps a one-thread executor: everything submitted runs in order on
the same thread. The daemon has two: "asr", which owns the recognizer (the
weights are shared by every session; sessions are only touched from that
thread), and "music", which runs intent parsing, recommendation and the
preference store, so a slow recommendation never delays a partial transcript.

At shutdown `stop(timeout_s)` drops what is queued and waits at most
`timeout_s` for the job in flight; a job that runs on (a decode inside a C
call) is abandoned: the daemon exits without it (`assistant.daemon.serve`).
"""

from __future__ import annotations

import asyncio
import functools
import queue
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Worker:
    def __init__(self, name: str):
        self.name = name
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self.pending = 0  # submitted, not finished (a queue depth for /metrics)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run fn(*args, **kwargs) on the worker thread and await its result."""
        loop = asyncio.get_running_loop()
        self.pending += 1
        try:
            return await loop.run_in_executor(self.executor, functools.partial(fn, *args, **kwargs))
        finally:
            self.pending -= 1

    async def responsive(self, timeout_s: float) -> bool:
        """True when a no-op gets through the worker's queue within `timeout_s` (for the watchdog)."""
        try:
            await asyncio.wait_for(self.call(lambda: None), timeout_s)
            return True
        except TimeoutError:
            return False

    def drop_queued(self) -> int:
        """Cancel the jobs waiting behind the one in flight (their callers get CancelledError); how many."""
        dropped = 0
        while True:
            try:
                item = self.executor._work_queue.get_nowait()  # what shutdown(cancel_futures=True) drains too
            except queue.Empty:
                return dropped
            if item is not None and item.future.cancel():
                dropped += 1

    async def stop(self, timeout_s: float) -> bool:
        """Drop the queued jobs and take no more; True once the thread has ended within `timeout_s`,
        False when a job in flight still runs (its result is not wanted: it is abandoned)."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + timeout_s
        while self.busy() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return not self.busy()

    def busy(self) -> bool:
        """The worker's thread is alive (after `stop`: still running a job)."""
        return any(t.is_alive() for t in self.executor._threads)
