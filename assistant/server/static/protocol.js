// What this page expects of the daemon's events (docs/protocol.md, assistant/server/protocol.py).
// Only the fields the page reads are checked; unknown fields and unknown event types are
// ignored, as protocol v1 asks of clients. A bad event raises ProtocolProblem, which the
// page shows as an error instead of rendering half of it.

export const PROTOCOL_VERSION = 1;
export const WS_PATH = "/ws";

// type -> {field: kind}; a kind ending in "?" may also be null or missing.
const FIELDS = {
  "hello": { session: "string", instance: "string", server: "string?", config: "object", snapshot: "object" },
  "status": { listening: "boolean", mode: "string?", input: "object", asr: "object?", recommender: "object?", remote_sources: "number?", voices: "object?" },
  "vad.start": { source: "string", utterance: "string" },
  "vad.end": { source: "string", utterance: "string", reason: "string", accepted: "boolean" },
  "transcript.partial": { source: "string", utterance: "string", text: "string" },
  "transcript.final": { source: "string", utterance: "string", text: "string", command: "string", accepted: "boolean", speaker: "object?" },
  "intent": { utterance: "string", name: "string", slots: "object", confidence: "number?", text: "string?", source: "string?", request: "string?", matches: "object?" },
  "recommendations": { utterance: "string", intent: "string", items: "array", request: "string?", user: "string?" },
  "answer": { utterance: "string", question: "string", text: "string", song: "object?", request: "string?" },
  "voice": { action: "string", state: "string", name: "string?", message: "string?", warnings: "array?", enrolled: "array?" },
  "error": { code: "string", message: "string", request: "string?" },
  "ack": { of: "string", request: "string?", source: "string?" },
  "pong": { request: "string?" },
};
const ITEM_FIELDS = {
  id: "string", title: "string", artist: "string", reasons: "array", score: "number?", album: "string?",
  year: "number?", genres: "array?", playable: "boolean?", media_url: "string?",
};
const SNAPSHOT_TYPES = { status: "status", transcript: "transcript.final", intent: "intent", recommendations: "recommendations" };

export const SERVER_EVENT_TYPES = Object.keys(FIELDS);

export class ProtocolProblem extends Error {
  constructor(message, { versionMismatch = false } = {}) {
    super(message);
    this.versionMismatch = versionMismatch;
  }
}

function kindOf(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

function checkFields(obj, fields, where) {
  for (const [name, spec] of Object.entries(fields)) {
    const optional = spec.endsWith("?");
    const want = optional ? spec.slice(0, -1) : spec;
    const value = obj[name];
    if ((value === undefined || value === null) && optional) continue;
    const got = kindOf(value);
    if (got !== want) {
      throw new ProtocolProblem(`${where}: field '${name}' should be ${want === "array" ? "a list" : `a ${want}`}, got ${value === undefined ? "nothing" : got}`);
    }
  }
}

/** Check one event object (already parsed); returns it, or throws ProtocolProblem. Unknown types pass unchecked. */
export function checkEvent(event, where = "event") {
  if (kindOf(event) !== "object") throw new ProtocolProblem(`${where} is not a JSON object`);
  if (typeof event.type !== "string") throw new ProtocolProblem(`${where} has no 'type'`);
  if (event.v !== PROTOCOL_VERSION) {
    throw new ProtocolProblem(`the daemon sent protocol v${JSON.stringify(event.v)} ('${event.type.slice(0, 40)}'); this page speaks v${PROTOCOL_VERSION}. Reload the page, or update the daemon.`, { versionMismatch: true });
  }
  const fields = FIELDS[event.type];
  if (!fields) return event;
  const label = `${where} '${event.type}'`;
  checkFields(event, fields, label);
  if (event.type === "recommendations") {
    event.items.forEach((item, i) => {
      if (kindOf(item) !== "object") throw new ProtocolProblem(`${label}: item ${i + 1} is not an object`);
      checkFields(item, ITEM_FIELDS, `${label} item ${i + 1}`);
      if (!item.reasons.every((r) => typeof r === "string")) throw new ProtocolProblem(`${label} item ${i + 1}: reasons should be strings`);
    });
  }
  if (event.type === "hello") {
    for (const [key, type] of Object.entries(SNAPSHOT_TYPES)) {
      const inner = event.snapshot[key];
      if (inner === null || inner === undefined) continue;
      checkEvent(inner, `hello snapshot.${key}`);
      if (inner.type !== type) throw new ProtocolProblem(`hello snapshot.${key} should be a '${type}' event, got '${String(inner.type).slice(0, 40)}'`);
    }
  }
  return event;
}

/** A WebSocket text frame -> a checked event object, or ProtocolProblem. */
export function parseEvent(text) {
  let event;
  try {
    event = JSON.parse(text);
  } catch (err) {
    throw new ProtocolProblem(`the daemon sent something that is not JSON (${err.message}): ${String(text).slice(0, 80)}`);
  }
  return checkEvent(event);
}
