"""Event-to-screen latency of the web player, in headless Chromium against a live daemon.

    .venv/bin/python bench/web_player_latency.py [--runs 5] [--requests-per-run 20] [--json]

The same set-up as tests/test_web_player.py (its helpers are reused): `assistant serve --input none`
with a small JSONL catalog, a music folder and the hashing embedder; Debian's chromium through
chromedriver. Each run loads the page afresh (new counters), types requests, waits for every
answer, and reads `window.__playerStats.summary()`: `handle` is an event's arrival -> the DOM
shows it, `frame` is arrival -> the first frame drawn after it (assistant/server/static/stats.js).
Reported: per run, then the median over runs of each run's p50, p95 and max, against the page's
budget (LATENCY_BUDGET_MS, 50 ms). Timing lives here, not in the tests: the tests check that every
event reaches the screen, and only this benchmark says how fast.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--requests-per-run", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import test_web_player as w
    from daemon_common import machine
    from daemon_proc import SHIPPED_MODEL
    from synthetic import tiny_checkpoint_file

    root = Path(tempfile.mkdtemp(prefix="web-latency-"))
    model = SHIPPED_MODEL if SHIPPED_MODEL.is_file() else tiny_checkpoint_file(root / "tiny.pt")
    daemon = w.PlayerDaemon(w.make_library(root), model)
    daemon.start("--input", "none")
    driver, service = w.start_browser(root)
    runs = []
    try:
        requests = [w.REQUESTS[i % len(w.REQUESTS)] for i in range(args.requests_per_run)]
        for _ in range(args.runs):
            driver.get(daemon.http + "/")
            w.wait_connected(driver)
            for request in requests:
                before = w.stats(driver)["events"].get("recommendations", 0)
                w.ask(driver, request)
                w.wait_events(driver, "recommendations", before, f"no answer to {request!r}")
            summary = w.wait_until(driver, lambda d: (s := w.stats(d))["frame"]["count"] >= s["handle"]["count"] and s,
                                   "frames were not drawn")
            runs.append(summary)
            if not args.json:
                print(json.dumps({k: summary[k] for k in ("handle", "frame", "uncaught")}))
    finally:
        w.quit_browser(driver, service)
        daemon.stop()

    def median(series: str, stat: str) -> float:
        return round(statistics.median(r[series][stat] for r in runs), 2)

    result = {"bench": "web_player_latency", "machine": machine(), "runs": len(runs), "requests_per_run": args.requests_per_run,
              "events_per_run": statistics.median(r["handle"]["count"] for r in runs), "budget_ms": runs[0]["budget_ms"],
              "handle_ms": {s: median("handle", s) for s in ("p50_ms", "p95_ms", "max_ms")},
              "frame_ms": {s: median("frame", s) for s in ("p50_ms", "p95_ms", "max_ms")},
              "uncaught": sum(r["uncaught"] for r in runs)}
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
