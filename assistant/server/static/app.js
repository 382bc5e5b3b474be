// The web player: wires the connection, the renderers, the player and the microphone to the page.
// One handler per event type; each updates only the part of the page it concerns, directly.

import { Connection, NotConnected } from "./connection.js";
import { Mic } from "./mic.js";
import { Player, VOLUME_STEP } from "./player.js";
import { renderAnswer, renderIntent, renderSongs, songLabel } from "./render.js";
import { PlayerStats } from "./stats.js";
import { VoicePanel } from "./voices.js";

const MAX_PROBLEMS = 8;  // the list keeps the latest ones; repeats are counted, not added
const FEEDBACK_DONE = { like: "Liked", dislike: "Disliked", skip: "Skipped" };

const $ = (id) => document.getElementById(id);
const stats = new PlayerStats();
window.__playerStats = stats;

const state = {
  config: null, instance: null, status: null, speaking: null,
  items: [], feedback: new Map(),  // song id -> {like, dislike, skip}: what was acknowledged
  pending: new Map(),              // feedback message id -> {item, kind}
  unreportedPlay: null,            // a song that started while the daemon was away: reported on reconnect
  user: null, recsUtterance: null, // whose recommendations are shown (voice profiles): their feedback goes to them
};

// ------------------------------------------------------------ problems and notices

function problem(message) {
  stats.problem(message);
  const list = $("errors");
  const last = list.lastElementChild;
  if (last && last.dataset.message === message) {
    last.dataset.count = String(Number(last.dataset.count) + 1);
    last.textContent = `${message} (×${last.dataset.count})`;
  } else {
    const item = document.createElement("li");
    item.dataset.message = message;
    item.dataset.count = "1";
    item.textContent = message;
    list.append(item);
    while (list.children.length > MAX_PROBLEMS) list.firstElementChild.remove();
  }
  $("errors-box").hidden = false;
}

function notice(text) {
  $("notice").textContent = text;
}

window.addEventListener("error", (e) => {
  stats.uncaught += 1;
  problem(`page error: ${e.message}`);
});
window.addEventListener("unhandledrejection", (e) => {
  stats.uncaught += 1;
  problem(`page error: ${e.reason && e.reason.message ? e.reason.message : e.reason}`);
});

// ------------------------------------------------------------ connection and listening state

function showConnection(s) {
  const badge = $("connection");
  badge.dataset.state = s.name;
  const text = {
    connecting: s.attempt ? `Reconnecting… (attempt ${s.attempt + 1})` : "Connecting…",
    open: "Connected",
    closed: `Disconnected: ${s.reason}. Retrying in ${(s.retryInMs / 1000).toFixed(1)} s`,
    incompatible: "Incompatible daemon",
  }[s.name];
  badge.textContent = text;
  $("reconnect").hidden = s.name !== "closed";
  if (s.name === "closed") {
    if (mic.on) {
      mic.stop({ notify: false });
      problem("microphone stopped: the connection to the daemon was lost");
    }
    player.clearDuck();
    state.speaking = null;
    showListening();
  }
}

function showListening() {
  const badge = $("listening");
  const s = state.status;
  let name = "unknown";
  let text = "Listening: unknown";
  if (state.speaking) {
    name = "speaking";
    text = `Hearing speech (${state.speaking.source})`;
  } else if (s) {
    const input = s.input;
    const where = input.kind === "file" ? "file" : "microphone";
    if (s.listening) [name, text] = ["listening", `Listening (${where})`];
    else if (input.state === "unavailable") [name, text] = ["unavailable", `Not listening: ${input.error || "no input"}`];
    else if (input.state === "finished") [name, text] = ["off", "Not listening: the input file has finished"];
    else if (input.state === "opening") [name, text] = ["waiting", `Opening the ${where}…`];
    else [name, text] = ["off", "No local microphone: type, or use this browser's microphone"];
    if (s.remote_sources) text += ` · ${s.remote_sources} remote stream${s.remote_sources > 1 ? "s" : ""}`;
  }
  badge.dataset.state = name;
  badge.textContent = text;
}

// ------------------------------------------------------------ event handlers

const handlers = {
  "hello"(e) {
    if (state.instance && state.instance !== e.instance) notice("The daemon restarted.");
    state.instance = e.instance;
    state.config = e.config;
    state.speaking = null;
    player.clearDuck();
    $("server").textContent = `${e.server || "daemon"} · session ${e.session} · mode ${e.config.mode || "?"}`;
    voices.onHello(e.config);
    if (state.unreportedPlay && player.current === state.unreportedPlay) sendFeedback(state.unreportedPlay, "played");
    state.unreportedPlay = null;
    const snap = e.snapshot;
    if (snap.status) handlers.status(snap.status);
    if (snap.transcript) handlers["transcript.final"](snap.transcript);
    if (snap.intent) renderIntent($("intent"), snap.intent);
    if (snap.recommendations) showSongs(snap.recommendations);  // shown, not played
    showListening();
  },

  "status"(e) {
    state.status = e;
    if (e.player && e.player.backend === "mpd") showMpd(e.player);
    voices.onStatus(e.voices);
    for (const [name, part] of [["speech recognizer", e.asr], ["recommender", e.recommender]]) {
      if (part && part.ready === false && part.error) problem(`${name} unavailable: ${part.error}`);
    }
    showListening();
  },

  "vad.start"(e) {
    state.speaking = e;
    player.duck(e.utterance);
    $("partial").textContent = "…";
    showListening();
  },

  "transcript.partial"(e) {
    $("partial").textContent = e.text || "…";
  },

  "vad.end"(e) {
    player.unduck(e.utterance);
    if (state.speaking && state.speaking.utterance === e.utterance) state.speaking = null;
    if (!e.accepted) $("partial").textContent = "(too short; ignored)";
    showListening();
  },

  "transcript.final"(e) {
    $("partial").textContent = "–";
    const why = state.config && state.config.mode === "wake_phrase" ? "no wake phrase" : "empty";
    $("final").textContent = e.accepted ? e.text : `${e.text || "(nothing)"} — ignored (${why})`;
    voices.onFinal(e);
  },

  "voice"(e) {
    voices.onVoice(e);
    notice(e.message);
  },

  "intent"(e) {
    renderIntent($("intent"), e);
    if (pagePlays() && player.applyIntent(e.name)) {
      notice(`${e.name.replace(/_/g, " ")}.`);
    } else if (e.name === "like" || e.name === "dislike") {
      notice(player.current ? `${e.name === "like" ? "Liked" : "Disliked"} ${songLabel(player.current)}.` : `${e.name}: nothing is playing.`);
    }
    // what_is_playing: the daemon answers with an "answer" event (from the catalog).
  },

  "answer"(e) {
    renderAnswer($("answer"), e);
    notice(e.text);
  },

  "recommendations"(e) {
    showSongs(e);
    if (pagePlays()) player.takeRecommendations(e);
  },

  "error"(e) {
    const pending = e.request ? state.pending.get(e.request) : null;
    if (pending) {
      state.pending.delete(e.request);
      problem(`${pending.kind} of ${songLabel(pending.item)} not recorded: ${e.message}`);
    } else {
      problem(`${e.code}: ${e.message}`);
    }
    mic.onError(e);
  },

  "ack"(e) {
    mic.onAck(e);
    const pending = e.request ? state.pending.get(e.request) : null;
    if (!pending) return;
    state.pending.delete(e.request);
    if (!FEEDBACK_DONE[pending.kind]) return;
    const done = { ...(state.feedback.get(pending.item.id) || {}), [pending.kind]: true };
    if (pending.kind === "like") done.dislike = false;
    if (pending.kind === "dislike") done.like = false;
    state.feedback.set(pending.item.id, done);
    notice(`${FEEDBACK_DONE[pending.kind]} ${songLabel(pending.item)}.`);
    const li = $("songs").querySelector(`li[data-id="${CSS.escape(pending.item.id)}"]`);
    for (const button of li ? li.querySelectorAll("button[data-action]") : []) {
      const kind = button.dataset.action;
      if (kind in done) {
        button.dataset.on = String(done[kind]);
        if (kind !== "skip") button.setAttribute("aria-pressed", String(done[kind]));
      }
    }
  },
};

function showSongs(e) {
  state.items = e.items;
  state.user = e.user || null;
  state.recsUtterance = e.utterance;
  const playable = e.items.filter((i) => i.media_url).length;
  const said = e.intent === "similar" ? "more like this" : e.intent;
  $("songs-summary").textContent = e.items.length
    ? `${e.items.length} song${e.items.length > 1 ? "s" : ""} (${said}); ${playable} playable. First: ${songLabel(e.items[0])}.`
    : `No songs found (${said}).`;
  renderSongs($("songs"), e.items, { playingId: player.current && player.current.id, feedback: state.feedback });
}

function onEvent(event, arrivedMs) {
  const handler = handlers[event.type];
  if (handler) {
    try {
      handler(event);
    } catch (err) {
      problem(`could not show a '${event.type}' event: ${err.message}`);
    }
  }
  stats.shown(event.type, arrivedMs);
}

// ------------------------------------------------------------ player

function showPlayer() {
  const item = player.current;
  const audio = $("audio");
  $("now-playing").textContent = !item ? "Nothing is playing."
    : `${audio.paused ? "Paused" : "Playing"}: ${songLabel(item)}`;
  $("toggle").textContent = player.playing ? "Pause" : "Play";
  $("volume").textContent = `Volume ${Math.round(player.baseVolume * 100)} %${player.ducked ? " (lowered while someone speaks)" : ""}`;
  for (const li of $("songs").children) li.dataset.playing = String(!!item && li.dataset.id === item.id);
}

/** With [player] backend = "mpd" the daemon plays the songs on MPD; this page only shows what MPD plays. */
function pagePlays() {
  return !state.config || state.config.player !== "mpd";
}

function showMpd(p) {
  const song = p.song ? `${p.song.title}${p.song.artist ? ` — ${p.song.artist}` : ""}` : "nothing";
  $("now-playing").textContent = !p.connected ? `MPD: ${p.error || "not connected"}`
    : `MPD: ${p.state === "play" ? "playing" : p.state === "pause" ? "paused" : "stopped"}: ${song}${p.ducked ? " (lowered while someone speaks)" : ""}`;
}

function sendFeedback(item, kind) {
  try {
    const id = conn.send({ type: "feedback", song_id: item.id, kind, ...(state.user ? { user: state.user } : {}) });
    state.pending.set(id, { item, kind });
    if (kind !== "played") voices.noteFeedback(state.recsUtterance, item.id, kind);
  } catch (err) {
    if (!(err instanceof NotConnected)) throw err;
    if (kind === "played") state.unreportedPlay = item;  // automatic: sent once the daemon is back
    else problem(`${kind} of ${songLabel(item)} not sent: ${err.message}`);
  }
}

// ------------------------------------------------------------ wiring

const conn = new Connection({
  onEvent,
  onState: showConnection,
  onProblem(message, { arrivedMs } = {}) {
    problem(message);
    if (arrivedMs !== undefined) stats.shown("malformed", arrivedMs);
  },
});
const player = new Player($("audio"), { onChange: showPlayer, onProblem: problem, onPlayed: (item) => sendFeedback(item, "played") });
const mic = new Mic(conn, {
  onProblem: problem,
  onState({ on, text }) {
    const button = $("mic");
    button.setAttribute("aria-pressed", String(on));
    button.textContent = on ? "Stop microphone" : "Start microphone";
    $("mic-state").textContent = text;
  },
});

const voices = new VoicePanel(conn, { onProblem: problem, onUserChange: (user) => { state.user = user; } });

$("ask").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = $("query");
  const text = input.value.trim();
  if (!text) return;
  try {
    conn.send({ type: "query", text });
    input.value = "";
  } catch (err) {
    if (!(err instanceof NotConnected)) throw err;
    problem(`not sent: ${err.message}`);
  }
});

$("mic").addEventListener("click", () => {
  if (mic.on) mic.stop();
  else if (!conn.open || !state.config) problem("the microphone needs a connection to the daemon");
  else mic.start(state.config.sample_rate_hz);
});

$("songs").addEventListener("click", (e) => {
  const button = e.target.closest("button[data-action]");
  const li = button && button.closest("li[data-id]");
  const item = li && state.items.find((i) => i.id === li.dataset.id);
  if (!item) return;
  const action = button.dataset.action;
  if (action === "play") {
    player.setQueue(state.items);
    player.play(item);
  } else {
    sendFeedback(item, action);
    if (action === "skip" && player.current && player.current.id === item.id) player.next({ quiet: true });
  }
});

$("toggle").addEventListener("click", () => player.toggle());
$("stop").addEventListener("click", () => player.stop());
$("next").addEventListener("click", () => player.next());
$("prev").addEventListener("click", () => player.previous());
$("vol-up").addEventListener("click", () => player.changeVolume(VOLUME_STEP));
$("vol-down").addEventListener("click", () => player.changeVolume(-VOLUME_STEP));
$("reconnect").addEventListener("click", () => conn.reconnectNow());
$("clear-errors").addEventListener("click", () => {
  $("errors").replaceChildren();
  $("errors-box").hidden = true;
  $("query").focus();
});

window.__player = { conn, player, mic, state, voices };  // for the console and tests
showPlayer();
conn.start();
