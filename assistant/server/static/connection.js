// The WebSocket to the daemon: connect, parse, reconnect with capped exponential backoff.
//
//   const conn = new Connection({ onEvent(event, arrivedMs), onState(state), onProblem(message, details) });
//   conn.start();  conn.send({ type: "query", text: "..." }) -> the message id;  conn.sendBinary(buffer)
//
// state: { name: "connecting" | "open" | "closed" | "incompatible", attempt, retryInMs, reason }
// "open" means the daemon's hello was accepted. A hello with another protocol version
// makes the state "incompatible": the socket stays up but events are not rendered.

import { PROTOCOL_VERSION, ProtocolProblem, WS_PATH, parseEvent } from "./protocol.js";

export const BACKOFF_FIRST_MS = 500;
export const BACKOFF_MAX_MS = 5000;
export const BACKOFF_JITTER = 0.2;  // each wait is up to 20 % shorter, so many pages do not retry in step

/** Wait before reconnect attempt `attempt` (1, 2, ...): 0.5 s, 1 s, 2 s, 4 s, then 5 s. */
export function backoffMs(attempt, random = Math.random) {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (1 - BACKOFF_JITTER * random()));
}

/** The ?token=... the page was opened with, passed on to the WebSocket and media URLs. */
export function pageToken() {
  return new URLSearchParams(location.search).get("token");
}

export function withToken(path) {
  const token = pageToken();
  if (!token) return path;
  return `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`;
}

export class NotConnected extends Error {}

export class Connection {
  constructor({ onEvent, onState, onProblem }) {
    this.onEvent = onEvent;
    this.onState = onState;
    this.onProblem = onProblem;
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.nextId = 1;
    this.state = { name: "connecting", attempt: 0, retryInMs: 0, reason: "" };
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}${withToken(WS_PATH)}`;
  }

  start() {
    clearTimeout(this.timer);
    this.timer = null;
    this._setState({ name: "connecting", attempt: this.attempt, retryInMs: 0, reason: "" });
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch (err) {
      this._closed(`cannot open the WebSocket: ${err.message}`);
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onmessage = (m) => this._message(m);
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this._closed(closeReason(e));
    };
    ws.onerror = () => {};  // followed by onclose, which says what happened
  }

  reconnectNow() {
    if (this.ws) return;
    this.attempt = 0;
    this.start();
  }

  get open() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN && this.state.name !== "connecting";
  }

  /** Send a client message; returns the id put on it. Throws NotConnected while the daemon is away. */
  send(message) {
    if (!this.open) throw new NotConnected("not connected to the daemon; reconnecting");
    const id = message.id ?? `w${this.nextId++}`;
    this.ws.send(JSON.stringify({ ...message, v: PROTOCOL_VERSION, id }));
    return id;
  }

  sendBinary(buffer) {
    if (!this.open) throw new NotConnected("not connected to the daemon");
    this.ws.send(buffer);
  }

  get bufferedBytes() {
    return this.ws ? this.ws.bufferedAmount : 0;
  }

  _message(m) {
    const arrivedMs = performance.now();
    if (typeof m.data !== "string") {
      this.onProblem("the daemon sent an unexpected binary frame; ignored", { arrivedMs });
      return;
    }
    let event;
    try {
      event = parseEvent(m.data);
    } catch (err) {
      if (!(err instanceof ProtocolProblem)) throw err;
      if (err.versionMismatch && this.state.name !== "open") this._setState({ name: "incompatible", attempt: 0, retryInMs: 0, reason: err.message });
      this.onProblem(err.message, { arrivedMs, malformed: true });
      return;
    }
    if (event.type === "hello") {
      this.attempt = 0;
      this._setState({ name: "open", attempt: 0, retryInMs: 0, reason: "" });
    }
    this.onEvent(event, arrivedMs);
  }

  _closed(reason) {
    this.attempt += 1;
    const wait = backoffMs(this.attempt);
    this._setState({ name: "closed", attempt: this.attempt, retryInMs: wait, reason });
    this.timer = setTimeout(() => this.start(), wait);
  }

  _setState(state) {
    this.state = state;
    this.onState(state);
  }
}

function closeReason(e) {
  const known = { 1000: "closed", 1001: "the daemon is stopping or restarting", 1006: "the daemon cannot be reached, or it refused this page (token, Origin)",
    1008: e.reason || "refused by the daemon", 1009: "a message was too large", 1011: "the daemon failed" };
  const text = known[e.code] || e.reason || "connection closed";
  return `${text} (code ${e.code})`;
}
