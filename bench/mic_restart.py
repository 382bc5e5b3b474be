"""The sound server stopped and started again and again under an open microphone, beside CPU burners.

    .venv/bin/python bench/mic_restart.py [--cycles 30] [--burners 3] [--timeout-s 60]

A private PulseAudio server (tests/pulse.py) is the microphone; `Microphone.blocks()` (the daemon's
capture, assistant/audio/capture.py) reads it in this process. Each cycle: 1 s of capture, stop the
server, wait for the state "unavailable", start the server, wait for "open". `--burners` processes spin
on the CPU meanwhile (a busy machine is what made PortAudio hang). A wait past `--timeout-s` is a hang:
the script prints every thread's stack and exits with status 1.

Printed: per cycle, how long "unavailable" took after the stop and "open" after the start; at the end the cycles done and the hangs.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import os
import statistics
import subprocess
import sys
import tempfile
import time

from daemon_common import machine

from pulse import VirtualMic


async def cycle_server(vm: VirtualMic, cycles: int, timeout_s: float) -> tuple[list[float], list[float]]:
    from assistant.audio.capture import Microphone
    from assistant.config import AudioConfig

    mic = Microphone(AudioConfig(), lambda state: None)
    samples = 0

    async def consume() -> None:
        nonlocal samples
        async for block in mic.blocks():
            samples += len(block)

    task = asyncio.create_task(consume())

    async def wait(state: str, start: float | None = None) -> float:
        start = start or time.monotonic()
        while mic.state.state != state:
            if time.monotonic() - start > timeout_s:
                print(f"HANG: no {state!r} within {timeout_s:.0f} s; last state {mic.state}", flush=True)
                faulthandler.dump_traceback(sys.stdout)
                os._exit(1)
            await asyncio.sleep(0.05)
        return time.monotonic() - start

    gone, back = [], []
    await wait("open")
    for i in range(cycles):
        await asyncio.sleep(1.0)
        heard = samples
        await asyncio.to_thread(vm.stop)
        gone.append(await wait("unavailable"))
        started = time.monotonic()
        await asyncio.to_thread(vm.start)
        back.append(await wait("open", started))
        print(f"cycle {i + 1}: unavailable after {gone[-1]:.2f} s; open {back[-1]:.2f} s after the server was started "
              f"(the start waits for a low-latency sink); {heard} samples heard so far", flush=True)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)  # the capture process is killed and reaped
    return gone, back


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cycles", type=int, default=30)
    ap.add_argument("--burners", type=int, default=3)
    ap.add_argument("--timeout-s", type=float, default=60.0)
    args = ap.parse_args()
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.burners)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            vm = VirtualMic(tmp).start()
            try:
                os.environ.update(vm.env)
                gone, back = asyncio.run(cycle_server(vm, args.cycles, args.timeout_s))
            finally:
                vm.stop()
    finally:
        for b in burners:
            b.kill()
            b.wait()
    print(f"{machine()}: {len(gone)} of {args.cycles} cycles, 0 hangs, {args.burners} burners; "
          f"'unavailable' median {statistics.median(gone):.2f} s, 'open' median {statistics.median(back):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
