"""The endpointer: 16 kHz audio in, utterance boundaries out (webrtcvad).

Pure logic over samples: no clocks, no threads, positions in stream
milliseconds. `Endpointer.push(audio)` takes float32 mono 16 kHz blocks of
any length, cuts them into `frame_ms` frames, classifies each with
webrtcvad or Silero VAD (`[vad] engine`; webrtcvad gated by the frame's level over the learned noise floor, see
NoiseFloor), and returns events:

    SpeechStarted(audio, speech_start_ms)  enough voiced audio (`start_trigger_ms`);
                                           `audio` holds the pre-roll and the trigger frames
    SpeechAudio(audio)                     every further frame while the utterance is open
    SpeechPaused() / SpeechResumed()       `PAUSE_MS` of silence inside an open utterance, and
                                           voice again after it (the pipeline starts the final
                                           decoding at a pause, before the hangover is over)
    SpeechEnded(speech_end_ms, reason, accepted)
        reason "silence"      `hangover_ms` (in whole frames) of unvoiced frames after the last voiced one
               "max_length"   `max_utterance_ms` reached
               "end_of_input" `flush()` (the source ended)
        accepted is False when the speech was shorter than `min_utterance_ms`.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from assistant.asr.features import SAMPLE_RATE_HZ  # webrtcvad accepts it (8/16/32/48 kHz)
from assistant.config import VadConfig

log = logging.getLogger(__name__)

TRIGGER_RATIO = 0.75  # voiced share of the trigger window that opens an utterance
# webrtcvad calls the first frames of a stream speech while its noise estimate
# settles; no utterance starts before this much audio (the frames are still pre-roll).
WARMUP_MS = 300
# webrtcvad keeps saying "speech" for up to ~90 ms after speech stops (its own
# overhang). A frame only counts as voiced when it is also this much louder
# than the background, so the hangover is counted from the real end of speech.
GATE_DB = 9.0
SILERO_GATE_DB = 0.0  # Silero's frames count as voiced at any level above the noise floor
FLOOR_WINDOW_MS = 3000  # the noise floor is a low percentile of the frame levels over this long
FLOOR_PERCENTILE = 10  # tolerates up to ~300 ms of digital silence in the window
INITIAL_FLOOR_DB = -60.0  # a quiet room; in the first second the floor is no higher, so speech at the very start passes
# Silence inside an utterance that is reported as a pause (at most half the hangover).
PAUSE_MS = 150


@dataclass(frozen=True)
class SpeechStarted:
    audio: np.ndarray      # float32: pre-roll + trigger frames
    speech_start_ms: int


@dataclass(frozen=True)
class SpeechAudio:
    audio: np.ndarray      # float32, one frame


@dataclass(frozen=True)
class SpeechPaused:
    pass


@dataclass(frozen=True)
class SpeechResumed:
    pass


@dataclass(frozen=True)
class SpeechEnded:
    speech_end_ms: int     # end of the last voiced frame
    duration_ms: int       # speech_end_ms - speech_start_ms
    reason: str            # "silence", "max_length" or "end_of_input"
    accepted: bool


EndpointEvent = SpeechStarted | SpeechAudio | SpeechPaused | SpeechResumed | SpeechEnded


def _webrtc_vad(aggressiveness: int):
    import webrtcvad  # imported on first use: no work at import time

    return webrtcvad.Vad(aggressiveness)


def frame_classifier(cfg: VadConfig) -> tuple[object, float]:
    """(classifier with `is_speech(pcm16, rate)`, level gate in dB) for `cfg.engine`.

    webrtcvad is gated GATE_DB over the noise floor (its overhang, see above);
    Silero is not (SILERO_GATE_DB): over music the floor is the music, and the
    gate would drop speech that is not much louder than it."""
    if cfg.engine == "silero":
        from assistant.audio.silero import SileroUnavailable, SileroVad

        try:
            return SileroVad(cfg.silero_threshold), SILERO_GATE_DB
        except SileroUnavailable as exc:  # said once; the audio path goes on with webrtcvad
            global _silero_missing_said
            if not _silero_missing_said:
                log.warning("%s; using webrtcvad instead", exc)
                _silero_missing_said = True
    return _webrtc_vad(cfg.aggressiveness), GATE_DB


_silero_missing_said = False


class NoiseFloor:
    """The background level in dB: a low percentile of the frame levels of the last few seconds.

    Minimum statistics rather than webrtcvad's labels, so a moment of digital
    silence (a dropout, a muted microphone) or webrtcvad calling noise speech
    cannot drag the floor down for long: a handful of odd frames is ignored
    and the rest leave the window after FLOOR_WINDOW_MS.
    """

    def __init__(self, frame_ms: int, gate_db: float = GATE_DB):
        self.gate_db = gate_db
        self.levels: deque[float] = deque(maxlen=round(FLOOR_WINDOW_MS / frame_ms))
        self.settled = round(1000 / frame_ms)  # before a second of audio the floor is at most INITIAL_FLOOR_DB
        self.floor_db = INITIAL_FLOOR_DB

    def voiced(self, frame: np.ndarray, vad_says_speech: bool) -> bool:
        level_db = 10.0 * math.log10(float(np.dot(frame, frame)) / max(len(frame), 1) + 1e-10)
        self.levels.append(level_db)
        self.floor_db = sorted(self.levels)[len(self.levels) * FLOOR_PERCENTILE // 100]
        if len(self.levels) < self.settled:
            self.floor_db = min(self.floor_db, INITIAL_FLOOR_DB)
        return vad_says_speech and level_db > self.floor_db + self.gate_db


def to_pcm16(audio: np.ndarray) -> bytes:
    """float32 [-1, 1] -> little-endian int16 bytes (clipped)."""
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


class Endpointer:
    """Segments one audio stream into utterances. One instance per source."""

    def __init__(self, cfg: VadConfig, vad: object | None = None):
        self.cfg = cfg
        if vad is None:
            vad, gate_db = frame_classifier(cfg)
        else:
            gate_db = GATE_DB
        self.vad = vad
        self.frame_len = SAMPLE_RATE_HZ * cfg.frame_ms // 1000
        self.trigger_frames = max(1, math.ceil(cfg.start_trigger_ms / cfg.frame_ms))
        self.trigger_voiced = max(1, math.ceil(TRIGGER_RATIO * self.trigger_frames))
        self.preroll_frames = math.ceil(cfg.preroll_ms / cfg.frame_ms)
        self.hangover_frames = max(1, round(cfg.hangover_ms / cfg.frame_ms))  # 400 ms of 30 ms frames: 13
        self.pause_frames = max(1, min(round(PAUSE_MS / cfg.frame_ms), self.hangover_frames // 2))
        self.max_frames = cfg.max_utterance_ms // cfg.frame_ms
        self.warmup_frames = math.ceil(WARMUP_MS / cfg.frame_ms)
        self.noise = NoiseFloor(cfg.frame_ms, gate_db)
        self._pending = np.zeros(0, dtype=np.float32)
        self._frames_seen = 0              # frames classified so far (stream clock)
        self._history: deque[tuple[np.ndarray, bool]] = deque(maxlen=self.preroll_frames + self.trigger_frames)
        self._in_speech = False
        self._start_frame = 0
        self._last_voiced_frame = 0
        self._silent_run = 0

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    @property
    def position_ms(self) -> int:
        """Stream time of the audio classified so far."""
        return self._frames_seen * self.cfg.frame_ms

    def push(self, audio: np.ndarray) -> list[EndpointEvent]:
        buf = np.concatenate([self._pending, np.asarray(audio, dtype=np.float32).reshape(-1)]) if len(self._pending) else np.asarray(audio, dtype=np.float32).reshape(-1)
        n_frames = len(buf) // self.frame_len
        self._pending = buf[n_frames * self.frame_len:].copy()
        events: list[EndpointEvent] = []
        for i in range(n_frames):
            frame = buf[i * self.frame_len:(i + 1) * self.frame_len]
            voiced = self.noise.voiced(frame, bool(self.vad.is_speech(to_pcm16(frame), SAMPLE_RATE_HZ)))
            self._frame(frame, voiced, events)
            self._frames_seen += 1
        return events

    def flush(self) -> list[EndpointEvent]:
        """The stream ended: close an open utterance (reason "end_of_input")."""
        self._pending = np.zeros(0, dtype=np.float32)
        self._history.clear()
        if not self._in_speech:
            return []
        return [self._end("end_of_input")]

    def _frame(self, frame: np.ndarray, voiced: bool, events: list[EndpointEvent]) -> None:
        index = self._frames_seen
        if not self._in_speech:
            self._history.append((frame, voiced))
            window = list(self._history)[-self.trigger_frames:]
            if (index >= self.warmup_frames and len(window) == self.trigger_frames
                    and sum(v for _, v in window) >= self.trigger_voiced):
                first_voiced = next(k for k, (_, v) in enumerate(window) if v)
                self._in_speech = True
                self._start_frame = index - self.trigger_frames + 1 + first_voiced
                self._last_voiced_frame = index
                self._silent_run = 0
                audio = np.concatenate([f for f, _ in self._history])
                self._history.clear()
                events.append(SpeechStarted(audio=audio, speech_start_ms=self._start_frame * self.cfg.frame_ms))
            return
        events.append(SpeechAudio(audio=frame.copy()))
        if voiced:
            if self._silent_run >= self.pause_frames:
                events.append(SpeechResumed())
            self._last_voiced_frame = index
            self._silent_run = 0
        else:
            self._silent_run += 1
            if self._silent_run == self.pause_frames:
                events.append(SpeechPaused())
        if self._silent_run >= self.hangover_frames:
            events.append(self._end("silence"))
        elif index + 1 - self._start_frame >= self.max_frames:
            events.append(self._end("max_length"))

    def _end(self, reason: str) -> SpeechEnded:
        self._in_speech = False
        self._silent_run = 0
        start_ms = self._start_frame * self.cfg.frame_ms
        end_ms = (self._last_voiced_frame + 1) * self.cfg.frame_ms
        duration = end_ms - start_ms
        return SpeechEnded(speech_end_ms=end_ms, duration_ms=duration, reason=reason,
                           accepted=duration >= self.cfg.min_utterance_ms)
