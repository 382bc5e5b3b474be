"""Single-thread workers that keep blocking work off the event loop.

`Worker` wraps a one-thread executor: everything submitted runs in order on
the same thread. The daemon has two: "asr", which owns the recognizer (the
weights are shared by every session; sessions are only touched from that
thread), and "music", which runs intent parsing, recommendation and the
preference store, so a slow recommendation never delays a partial transcript.
"""

from __future__ import annotations

import asyncio
import functools
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

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
