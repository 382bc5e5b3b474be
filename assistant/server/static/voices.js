// Voice profiles (issue 18): who was recognized (and "it was someone else"), the enrolled voices
// (Forget), and "Add a voice": three sentences read aloud through this browser's microphone, or
// audio files, sent as voice.enrol (16 kHz mono pcm_s16le, base64). docs/protocol.md "voice".

import { WORKLET_URL } from "./mic.js";

export const RATE_HZ = 16000;
export const SENTENCES = [
  "The quick brown fox jumps over the lazy dog by the river.",
  "Please play something calm for a rainy Sunday afternoon.",
  "My favourite songs are the ones I can sing along to.",
];
export const MAX_RECORDING_S = 7;  // per recording: three fit in the daemon's default 1 MB message ([server] max_message_bytes)
const MAX_FEEDBACK = 100;  // per utterance, as voice.correct allows

/** Int16Array -> base64 of its little-endian bytes. */
export function pcmBase64(samples) {
  const bytes = new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

function toPcm16(floats) {
  const out = new Int16Array(floats.length);
  for (let i = 0; i < floats.length; i++) out[i] = Math.max(-32768, Math.min(32767, Math.round(floats[i] * 32767)));
  return out;
}

/** An audio file -> 16 kHz mono Int16Array (the browser decodes and resamples it). */
export async function fileToPcm(file) {
  const data = await file.arrayBuffer();
  const ctx = new AudioContext();
  try {
    const decoded = await ctx.decodeAudioData(data);
    const seconds = Math.min(decoded.duration, MAX_RECORDING_S);
    const offline = new OfflineAudioContext(1, Math.max(1, Math.ceil(seconds * RATE_HZ)), RATE_HZ);
    const src = offline.createBufferSource();
    src.buffer = decoded;
    src.connect(offline.destination);
    src.start();
    return toPcm16((await offline.startRendering()).getChannelData(0));
  } finally {
    ctx.close().catch(() => {});
  }
}

/** This browser's microphone recorded to memory (not streamed), 16 kHz mono, through mic-worklet.js. */
class Recorder {
  async start() {
    this.frames = [];
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true } });
    this.context = new AudioContext();
    await this.context.audioWorklet.addModule(WORKLET_URL);
    this.node = new AudioWorkletNode(this.context, "pcm-frames", { numberOfOutputs: 1, outputChannelCount: [1],
      processorOptions: { targetRateHz: RATE_HZ } });
    this.node.port.onmessage = (m) => {
      if (this.frames.length * 320 < MAX_RECORDING_S * RATE_HZ) this.frames.push(new Int16Array(m.data));
    };
    this.context.createMediaStreamSource(this.stream).connect(this.node);
    this.node.connect(this.context.destination);
  }

  stop() {
    if (this.node) { this.node.port.postMessage("stop"); this.node.disconnect(); }
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    if (this.context) this.context.close().catch(() => {});
    this.node = this.stream = this.context = null;
    const n = this.frames.reduce((s, f) => s + f.length, 0);
    const out = new Int16Array(n);
    let at = 0;
    for (const f of this.frames) { out.set(f, at); at += f.length; }
    return out;
  }
}

export class VoicePanel {
  constructor(conn, { onProblem, onUserChange }) {
    this.conn = conn;
    this.onProblem = onProblem;
    this.onUserChange = onUserChange;  // (user) => void: the profile feedback now goes to
    this.enrolled = [];
    this.defaultUser = "default";
    this.last = null;                   // the latest transcript.final with a speaker
    this.feedback = new Map();          // utterance -> [{song_id, kind}] sent for its songs
    this.recordings = [null, null, null];
    this.files = [];
    this.recorder = null;
    this.recording = -1;
    this.$ = (id) => document.getElementById(id);
    this._build();
  }

  _build() {
    const list = this.$("voice-sentences");
    SENTENCES.forEach((sentence, i) => {
      const li = document.createElement("li");
      const text = document.createElement("span");
      text.textContent = `“${sentence}” `;
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.sentence = String(i);
      button.textContent = "Record";
      const done = document.createElement("span");
      done.className = "muted";
      done.id = `voice-take-${i}`;
      li.append(text, button, done);
      list.append(li);
    });
    list.addEventListener("click", (e) => {
      const button = e.target.closest("button[data-sentence]");
      if (button) this._toggleRecord(Number(button.dataset.sentence), button);
    });
    this.$("voice-files").addEventListener("change", (e) => { this.files = [...e.target.files]; this._ready(); });
    this.$("voice-add").addEventListener("submit", (e) => { e.preventDefault(); this._save(); });
    this.$("voice-name").addEventListener("input", () => this._ready());
    this.$("voice-list").addEventListener("click", (e) => {
      const button = e.target.closest("button[data-forget]");
      if (button) this._send({ type: "voice.forget", name: button.dataset.forget });
    });
    this.$("voice-correct").addEventListener("click", () => this._correct());
    this._ready();
  }

  _send(message) {
    try {
      return this.conn.send(message);
    } catch (err) {
      this.onProblem(`${message.type} not sent: ${err.message}`);
      return null;
    }
  }

  // ---------------------------------------------------------- daemon events
  onHello(config) {
    this.defaultUser = (config && config.default_user) || "default";
  }

  onStatus(voices) {
    if (!voices) return;
    this.enrolled = voices.enrolled || [];
    this._showList();
    this.$("voice-state").textContent = voices.error ? `Voices unavailable: ${voices.error}`
      : !voices.enabled ? "Voice profiles are off ([voices] enabled = false)."
      : voices.active ? `Each request is matched to ${this.enrolled.length === 1 ? "the enrolled voice" : `one of ${this.enrolled.length} voices`}.`
      : "No voice enrolled: every request uses the household profile.";
  }

  onFinal(event) {
    if (!event.speaker) return;
    this.last = { utterance: event.utterance, ...event.speaker };
    const s = event.speaker;
    this.$("speaker").textContent = s.recognized ? `Recognized: ${s.user}`
      : `Not recognized (nearest ${s.nearest || "–"}, ${Number(s.score).toFixed(2)}): ${s.user} profile`;
    this._showChoices();
  }

  onVoice(event) {
    this.enrolled = event.enrolled || this.enrolled;
    this._showList();
    const warn = (event.warnings || []).length ? ` Warning: ${event.warnings.join("; ")}` : "";
    this.$("voice-message").textContent = `${event.message}${warn}`;
    if (event.state === "record") {
      this.$("voice-name").value = event.name;
      this.$("voice-name").focus();
      this._ready();
    }
    if (event.state === "enrolled" && event.action === "enrol") {
      this.recordings = [null, null, null];
      this.files = [];
      this.$("voice-files").value = "";
      SENTENCES.forEach((_, i) => { this.$(`voice-take-${i}`).textContent = ""; });
      this._ready();
    }
    if (event.state === "corrected") this.$("speaker").textContent = `Corrected: ${event.name}`;
  }

  /** Feedback sent for a song of `utterance` (kept so a correction can move it). */
  noteFeedback(utterance, songId, kind) {
    if (!utterance) return;
    const list = this.feedback.get(utterance) || [];
    if (list.length < MAX_FEEDBACK) list.push({ song_id: songId, kind });
    this.feedback.set(utterance, list);
    while (this.feedback.size > 50) this.feedback.delete(this.feedback.keys().next().value);
  }

  // ---------------------------------------------------------- page actions
  _showList() {
    const list = this.$("voice-list");
    list.replaceChildren(...this.enrolled.map((name) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.forget = name;
      button.textContent = "Forget";
      button.setAttribute("aria-label", `Forget ${name}'s voice`);
      li.append(`${name} `, button);
      return li;
    }));
    this._showChoices();
  }

  _showChoices() {
    const select = this.$("voice-who");
    const names = [...this.enrolled, this.defaultUser];
    select.replaceChildren(...names.map((n) => Object.assign(document.createElement("option"), { value: n, textContent: n })));
    const box = this.$("voice-fix");
    box.hidden = !this.last || names.length < 2;
    if (this.last) select.value = names.find((n) => n !== this.last.user) || this.last.user;
  }

  _correct() {
    if (!this.last) return;
    const user = this.$("voice-who").value;
    if (!user || user === this.last.user) return;
    const feedback = this.feedback.get(this.last.utterance) || [];
    if (this._send({ type: "voice.correct", utterance: this.last.utterance, user, from_user: this.last.user, feedback }) !== null) {
      this.feedback.delete(this.last.utterance);
      this.last = { ...this.last, user };
      this.onUserChange(user);
    }
  }

  async _toggleRecord(i, button) {
    if (this.recording === i) {
      this.recordings[i] = this.recorder.stop();
      this.recorder = null;
      this.recording = -1;
      button.textContent = "Record again";
      button.setAttribute("aria-pressed", "false");
      const seconds = this.recordings[i].length / RATE_HZ;
      this.$(`voice-take-${i}`).textContent = ` ${seconds.toFixed(1)} s recorded${seconds >= MAX_RECORDING_S - 0.05 ? ` (the first ${MAX_RECORDING_S} s are kept)` : ""}`;
      this._ready();
      return;
    }
    if (this.recording >= 0) return;  // one at a time
    if (!navigator.mediaDevices || !window.AudioWorkletNode) {
      this.onProblem("this browser cannot record here (it needs https or localhost): upload files instead");
      return;
    }
    try {
      this.recorder = new Recorder();
      await this.recorder.start();
      this.recording = i;
      button.textContent = "Stop";
      button.setAttribute("aria-pressed", "true");
      this.$(`voice-take-${i}`).textContent = " recording… read the sentence, then Stop";
    } catch (err) {
      this.recorder = null;
      this.onProblem(`microphone: ${err.name === "NotAllowedError" ? "permission was denied" : err.message}`);
    }
  }

  _ready() {
    const takes = this.recordings.filter(Boolean).length;
    const enough = this.files.length > 0 || takes === SENTENCES.length;
    this.$("voice-save").disabled = !enough || !this.$("voice-name").value.trim();
    this.$("voice-progress").textContent = this.files.length
      ? `${this.files.length} file(s) chosen${this.files.length > SENTENCES.length ? ` (the first ${SENTENCES.length} are used)` : ""}, ${MAX_RECORDING_S} s of each`
      : `${takes} of ${SENTENCES.length} sentences recorded`;
  }

  async _save() {
    const name = this.$("voice-name").value.trim();
    let takes;
    try {
      takes = this.files.length ? await Promise.all(this.files.slice(0, SENTENCES.length).map(fileToPcm)) : this.recordings.filter(Boolean);
    } catch (err) {
      this.onProblem(`could not read the audio file: ${err.message}`);
      return;
    }
    if (this._send({ type: "voice.enrol", name, recordings: takes.map(pcmBase64) }) !== null) {
      this.$("voice-message").textContent = `Checking ${name}'s recordings…`;
    }
  }
}
