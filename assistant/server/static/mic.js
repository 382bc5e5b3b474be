// The browser's microphone as the daemon's remote audio (docs/protocol.md):
// audio.start {pcm_s16le, 16 kHz, mono} -> ack with the stream's source id -> binary PCM frames
// from the AudioWorklet (mic-worklet.js) -> audio.end.

export const WORKLET_URL = "/static/mic-worklet.js";
export const MAX_BUFFERED_BYTES = 64000;  // about 2 s of 16 kHz 16-bit audio not yet sent: drop frames, do not pile up

export class Mic {
  constructor(connection, { onState, onProblem }) {
    this.conn = connection;
    this.onState = onState;      // ({on, source, text}) => void
    this.onProblem = onProblem;  // (message) => void
    this.stream = null;
    this.context = null;
    this.node = null;
    this.startId = null;         // id of our audio.start, until its ack
    this.source = null;          // the daemon's id for our stream, once acknowledged
    this.dropped = 0;
    this.on = false;
  }

  async start(targetRateHz) {
    if (this.on) return;
    if (!navigator.mediaDevices || !window.AudioWorkletNode) {
      this.onProblem("this browser cannot stream its microphone here (it needs https or localhost, and AudioWorklet)");
      return;
    }
    this.on = true;
    this._state("Asking for the microphone…");
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true } });
      this.context = new AudioContext();
      await this.context.audioWorklet.addModule(WORKLET_URL);
      if (!this.on) return;  // stopped while starting
      const input = this.context.createMediaStreamSource(this.stream);
      this.node = new AudioWorkletNode(this.context, "pcm-frames", { numberOfOutputs: 1, outputChannelCount: [1],
        processorOptions: { targetRateHz } });
      this.node.port.onmessage = (m) => this._frame(m.data);
      this.node.onprocessorerror = () => {
        this.onProblem("microphone: the audio processor failed; microphone stopped");
        this.stop();
      };
      input.connect(this.node);
      this.node.connect(this.context.destination);  // outputs silence; keeps the node running
      this.startId = this.conn.send({ type: "audio.start",
        format: { encoding: "pcm_s16le", sample_rate_hz: targetRateHz, channels: 1 } });
      this._state(`Starting a stream at ${this.context.sampleRate} Hz → ${targetRateHz} Hz…`);
    } catch (err) {
      const why = err.name === "NotAllowedError" ? "permission to use the microphone was denied"
        : err.name === "NotFoundError" ? "no microphone was found" : err.message;
      this.onProblem(`microphone: ${why}`);
      this.stop({ notify: false });
    }
  }

  /** An ack or error from the daemon that may be about our stream. */
  onAck(event) {
    if (event.of === "audio.start" && event.request === this.startId && this.on) {
      this.source = event.source;
      this._state(`Streaming as ${event.source}`);
    }
  }

  onError(event) {
    if (this.startId && event.request === this.startId) {  // our audio.start was refused
      this.stop({ notify: false });
    }
  }

  stop({ notify = true } = {}) {
    const wasStreaming = this.source !== null;
    this.on = false;
    this.source = null;
    this.startId = null;
    if (this.node) {
      this.node.port.postMessage("stop");
      this.node.disconnect();
      this.node = null;
    }
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    this.stream = null;
    if (this.context) this.context.close().catch(() => {});
    this.context = null;
    if (notify && wasStreaming && this.conn.open) {
      try {
        this.conn.send({ type: "audio.end" });
      } catch (err) {
        // the connection went away: the daemon ends the stream itself
      }
    }
    this._state("Microphone off");
  }

  _frame(buffer) {
    if (!this.source) return;  // not acknowledged yet, or stopping
    if (!this.conn.open) {
      this.stop({ notify: false });
      this.onProblem("microphone stopped: the connection to the daemon was lost");
      return;
    }
    if (this.conn.bufferedBytes > MAX_BUFFERED_BYTES) {
      if (this.dropped++ === 0) this.onProblem("the network is too slow for the microphone: audio is being dropped");
      return;
    }
    this.conn.sendBinary(buffer);
  }

  _state(text) {
    this.onState({ on: this.on, source: this.source, text });
  }
}
