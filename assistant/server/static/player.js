// Playback of recommended songs with an <audio> element: a queue of the latest playable list,
// player controls (from buttons and from spoken or typed intents), and ducking while someone speaks.

import { withToken } from "./connection.js";

export const VOLUME_STEP = 0.1;
export const DUCK_FACTOR = 0.25;          // while speech is open the music plays at a quarter of its volume
export const DUCK_MAX_MS = 30000;         // a lost vad.end never leaves the music ducked longer than this
export const AUTOPLAY_INTENTS = new Set(["play", "next", "similar"]);  // their recommendations start playing
const CONTROL_INTENTS = new Set(["pause", "resume", "stop", "previous", "volume_up", "volume_down"]);

const MEDIA_ERRORS = { 1: "loading was aborted", 2: "a network error", 3: "the file could not be decoded",
  4: "the file is missing or in a format this browser cannot play" };

export class Player {
  constructor(audio, { onChange, onProblem, onPlayed }) {
    this.audio = audio;
    this.onChange = onChange;    // () => void: what is playing, paused state or volume changed
    this.onProblem = onProblem;  // (message) => void
    this.onPlayed = onPlayed;    // (item) => void: a song really started (feedback "played")
    this.queue = [];
    this.current = null;
    this.history = [];
    this.baseVolume = 1;
    this.speaking = new Set();
    this.duckTimer = null;
    this.expectedVolume = audio.volume;
    this.reportPending = false;
    audio.addEventListener("volumechange", () => this._volumeChanged());
    audio.addEventListener("playing", () => {
      if (this.reportPending && this.current) {
        this.reportPending = false;
        this.onPlayed(this.current);
      }
      this.onChange();
    });
    for (const name of ["pause", "play", "emptied"]) audio.addEventListener(name, () => this.onChange());
    audio.addEventListener("ended", () => this.next({ quiet: true }));
    audio.addEventListener("error", () => this._mediaError());
  }

  get ducked() {
    return this.speaking.size > 0;
  }

  get playing() {
    return this.current !== null && !this.audio.paused;
  }

  /** The playable songs of the latest list become the queue. */
  setQueue(items) {
    this.queue = items.filter((item) => item.playable && item.media_url);
  }

  play(item) {
    if (!item.media_url) {
      this.onProblem(`“${item.title}” has no playable file (only songs from a music folder can be played)`);
      return;
    }
    if (this.current && this.current.id !== item.id) this.history.push(this.current);
    this.current = item;
    this.reportPending = true;
    this.audio.src = withToken(item.media_url);
    this._start();
    this.onChange();
  }

  resume() {
    if (!this.current) {
      if (this.queue.length) this.play(this.queue[0]);
      else this.onProblem("nothing to play yet: ask for some music first");
      return;
    }
    this._start();
  }

  pause() {
    this.audio.pause();
  }

  toggle() {
    if (this.playing) this.pause();
    else this.resume();
  }

  stop() {
    this.audio.pause();
    if (this.current) this.audio.currentTime = 0;
    this.onChange();
  }

  next({ quiet = false } = {}) {
    const at = this.current ? this.queue.findIndex((item) => item.id === this.current.id) : -1;
    const item = this.queue[at + 1];
    if (item) this.play(item);
    else if (!quiet) this.onProblem("no next song in this list: ask for more music");
    else this.onChange();
  }

  previous() {
    const item = this.history.pop();
    if (!item) {
      this.onProblem("no previous song");
      return;
    }
    this.current = null;  // so that play() does not push the song we leave back onto the history
    this.play(item);
  }

  changeVolume(delta) {
    this.baseVolume = Math.round(Math.min(1, Math.max(0, this.baseVolume + delta)) * 100) / 100;
    this._applyVolume();
  }

  /** Speech began: lower the music until the utterance ends. */
  duck(utterance) {
    this.speaking.add(utterance);
    clearTimeout(this.duckTimer);
    this.duckTimer = setTimeout(() => this.clearDuck(), DUCK_MAX_MS);
    this._applyVolume();
  }

  unduck(utterance) {
    this.speaking.delete(utterance);
    if (!this.ducked) clearTimeout(this.duckTimer);
    this._applyVolume();
  }

  clearDuck() {
    this.speaking.clear();
    clearTimeout(this.duckTimer);
    this._applyVolume();
  }

  /** A player-control intent (pause, stop, volume_up, ...); true when it was one. */
  applyIntent(name) {
    if (!CONTROL_INTENTS.has(name)) return false;
    switch (name) {
      case "pause": this.pause(); break;
      case "resume": this.resume(); break;
      case "stop": this.stop(); break;
      case "previous": this.previous(); break;
      case "volume_up": this.changeVolume(VOLUME_STEP); break;
      case "volume_down": this.changeVolume(-VOLUME_STEP); break;
    }
    return true;
  }

  /** Recommendations arrived: they become the queue; play/next/similar start the first playable song. */
  takeRecommendations(event) {
    const items = event.items;
    const playable = items.filter((item) => item.playable && item.media_url);
    if (AUTOPLAY_INTENTS.has(event.intent)) {
      if (playable.length) {
        this.setQueue(items);
        this.play(playable[0]);
        return;
      }
      if (event.intent === "next" && this.current) {  // nothing new to play: go on in the current list
        this.next();
        return;
      }
    }
    if (!this.current || !this.playing) this.setQueue(items);
  }

  _start() {
    const result = this.audio.play();
    if (result && typeof result.catch === "function") {
      result.catch((err) => {
        if (err.name === "AbortError") return;  // another song was chosen before this one started
        if (err.name === "NotAllowedError") {
          this.onProblem("the browser blocked playback until you use the page: press Play");
        } else if (!this.audio.error) {  // media errors are reported by the error event
          this.onProblem(`cannot play: ${err.message}`);
        }
      });
    }
  }

  _applyVolume() {
    const volume = this.ducked ? this.baseVolume * DUCK_FACTOR : this.baseVolume;
    this.expectedVolume = volume;
    this.audio.volume = volume;
    this.onChange();
  }

  _volumeChanged() {
    const v = this.audio.volume;
    if (Math.abs(v - this.expectedVolume) > 1e-6) {  // the listener moved the element's own slider
      this.baseVolume = this.ducked ? Math.min(1, v / DUCK_FACTOR) : v;
      this.expectedVolume = v;
    }
    this.onChange();
  }

  async _mediaError() {
    const item = this.current;
    if (!item || !this.audio.error) return;
    let detail = MEDIA_ERRORS[this.audio.error.code] || "unknown media error";
    const url = this.audio.currentSrc || this.audio.src;
    try {  // the daemon says why it refused the file
      const abort = new AbortController();
      const response = await fetch(url, { signal: abort.signal, cache: "no-store" });
      if (!response.ok) detail = `the daemon answered ${response.status}: ${(await response.text()).trim().slice(0, 200)}`;
      abort.abort();
    } catch (err) {
      if (err.name !== "AbortError") detail += ` (${err.message})`;
    }
    this.onProblem(`cannot play “${item.title}”: ${detail}`);
    this.onChange();
  }
}
