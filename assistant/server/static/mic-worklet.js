// AudioWorklet: the microphone at the AudioContext's rate -> 16-bit PCM at the daemon's rate
// (16 kHz), mono, in frames of FRAME_MS posted to the page (which sends them as binary
// WebSocket frames after audio.start; docs/protocol.md "audio.start, binary frames, audio.end").
//
// Resampling: an 8th-order Butterworth low-pass (four biquads; cut-off at 90 % of the target
// Nyquist frequency, about -47 dB at 12 kHz from 48 kHz) against aliasing, then linear
// interpolation, both carried across render quanta.

const FRAME_MS = 20;
const CUTOFF_OF_NYQUIST = 0.9;
const STAGES = 4;  // 2nd-order sections: an 8th-order filter

/** RBJ cookbook low-pass biquad coefficients, normalized by a0. */
function lowpass(cutoffHz, rateHz, q) {
  const w = 2 * Math.PI * cutoffHz / rateHz;
  const alpha = Math.sin(w) / (2 * q);
  const cos = Math.cos(w);
  const a0 = 1 + alpha;
  return { b0: (1 - cos) / 2 / a0, b1: (1 - cos) / a0, b2: (1 - cos) / 2 / a0, a1: -2 * cos / a0, a2: (1 - alpha) / a0 };
}

export class Resampler {
  constructor(inRateHz, outRateHz) {
    this.step = inRateHz / outRateHz;  // input samples per output sample
    this.t = 0;                        // next output position, in input samples from the current block's start
    this.last = 0;                     // the previous block's last (filtered) sample, at position -1
    this.filters = [];
    if (inRateHz > outRateHz) {
      for (let k = 0; k < STAGES; k++) {  // Butterworth: section k's Q from its pole pair's angle
        const q = 1 / (2 * Math.cos((2 * k + 1) * Math.PI / (4 * STAGES)));
        this.filters.push({ ...lowpass(CUTOFF_OF_NYQUIST * outRateHz / 2, inRateHz, q), x1: 0, x2: 0, y1: 0, y2: 0 });
      }
    }
  }

  /** Float32Array block in -> Float32 samples at the output rate (an array, possibly empty). */
  push(block) {
    const x = Float32Array.from(block);
    for (const f of this.filters) {
      for (let i = 0; i < x.length; i++) {
        const y = f.b0 * x[i] + f.b1 * f.x1 + f.b2 * f.x2 - f.a1 * f.y1 - f.a2 * f.y2;
        f.x2 = f.x1; f.x1 = x[i]; f.y2 = f.y1; f.y1 = y;
        x[i] = y;
      }
    }
    const out = [];
    const n = x.length;
    while (this.t <= n - 1) {
      const i = Math.floor(this.t);
      const frac = this.t - i;
      const a = i < 0 ? this.last : x[i];
      const b = i + 1 < n ? x[i + 1] : a;
      out.push(a + (b - a) * frac);
      this.t += this.step;
    }
    this.t -= n;
    if (n) this.last = x[n - 1];
    return out;
  }
}

if (typeof registerProcessor === "function") {
  class PcmProcessor extends AudioWorkletProcessor {
    constructor(options) {
      super();
      const target = options.processorOptions.targetRateHz;
      this.resampler = new Resampler(sampleRate, target);  // sampleRate: the context's, a worklet global
      this.frameSamples = Math.round(target * FRAME_MS / 1000);
      this.frame = new Int16Array(this.frameSamples);
      this.filled = 0;
      this.running = true;
      this.port.onmessage = (m) => { if (m.data === "stop") this.running = false; };
    }

    process(inputs) {
      const channels = inputs[0];
      if (channels && channels.length) {
        let mono = channels[0];
        if (channels.length > 1) {  // average the channels
          mono = new Float32Array(mono.length);
          for (const ch of channels) for (let i = 0; i < ch.length; i++) mono[i] += ch[i] / channels.length;
        }
        for (const s of this.resampler.push(mono)) {
          this.frame[this.filled++] = Math.max(-32768, Math.min(32767, Math.round(s * 32767)));
          if (this.filled === this.frameSamples) {
            this.port.postMessage(this.frame.buffer, [this.frame.buffer]);  // transferred: this.frame is now empty
            this.frame = new Int16Array(this.frameSamples);
            this.filled = 0;
          }
        }
      }
      return this.running;
    }
  }
  registerProcessor("pcm-frames", PcmProcessor);
}
