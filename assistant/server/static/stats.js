// Event-to-screen latency, measured in the page with performance.now():
//   handle: a WebSocket message arrived -> the DOM shows it (synchronous parse, check and update)
//   frame:  a WebSocket message arrived -> the first animation frame after the update has been produced
// Exposed as window.__playerStats; bench/web_player_latency.py reports summary() against LATENCY_BUDGET_MS.

export const LATENCY_BUDGET_MS = 50;
export const MAX_SAMPLES = 2000;

class Series {
  constructor() {
    this.samples = [];  // the latest MAX_SAMPLES values
    this.count = 0;
    this.max = 0;
  }

  add(ms) {
    this.count += 1;
    this.max = Math.max(this.max, ms);
    if (this.samples.length >= MAX_SAMPLES) this.samples.shift();
    this.samples.push(ms);
  }

  summary() {
    const sorted = [...this.samples].sort((a, b) => a - b);
    const at = (q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null);
    const round = (v) => (v === null ? null : Math.round(v * 100) / 100);
    return { count: this.count, p50_ms: round(at(0.5)), p95_ms: round(at(0.95)), max_ms: round(this.max) };
  }
}

export class PlayerStats {
  constructor() {
    this.handle = new Series();
    this.frame = new Series();
    this.byType = {};
    this.problems = 0;
    this.uncaught = 0;
    this.lastProblem = null;
    this.waitingForFrame = [];
    this.channel = new MessageChannel();
    this.channel.port1.onmessage = () => this._framed();
  }

  /** Call when an event's DOM update is done; `arrivedMs` is performance.now() at its arrival. */
  shown(type, arrivedMs) {
    this.byType[type] = (this.byType[type] || 0) + 1;
    this.handle.add(performance.now() - arrivedMs);
    if (document.hidden) return;  // no frames are produced for a hidden page
    this.waitingForFrame.push(arrivedMs);
    if (this.waitingForFrame.length === 1) {
      // rAF runs just before the frame is rendered; a message posted from it runs just after.
      requestAnimationFrame(() => this.channel.port2.postMessage(0));
    }
  }

  problem(message) {
    this.problems += 1;
    this.lastProblem = message;
  }

  _framed() {
    const now = performance.now();
    for (const arrivedMs of this.waitingForFrame) this.frame.add(now - arrivedMs);
    this.waitingForFrame = [];
  }

  summary() {
    return { budget_ms: LATENCY_BUDGET_MS, handle: this.handle.summary(), frame: this.frame.summary(), events: { ...this.byType },
      problems: this.problems, uncaught: this.uncaught, last_problem: this.lastProblem };
  }
}
