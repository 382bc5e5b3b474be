"""Protocol v1: the typed JSON events exchanged over the daemon's WebSocket.

Pure data, no I/O: the transport (`assistant.server.ws`) only moves the JSON
these classes produce and parse. docs/protocol.md is the reader's version of
this module, with an example of every message.

Every message is one JSON object (one WebSocket text frame) with

    type  the message kind ("transcript.final", "query", ...)
    v     the protocol version, PROTOCOL_VERSION
    ts    server time in Unix seconds (server events; optional from clients)

plus ids: `session` (one WebSocket connection), `source` (one audio input:
"mic", "file", "remote-c3-1"), `utterance` ("u12" for speech, "q4" for a
typed query) and `request` (the `id` a client gave its message, echoed back).

Binary WebSocket frames carry raw PCM audio after an `audio.start` message
and are not described here (see AudioFormat).
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

PROTOCOL_VERSION = 1

# Feedback kinds a client may send about a song.
FEEDBACK_KINDS: tuple[str, ...] = ("like", "dislike", "skip", "played")
# PCM encodings accepted for remote audio.
AUDIO_ENCODINGS: tuple[str, ...] = ("pcm_s16le", "pcm_f32le")
MIN_AUDIO_RATE_HZ = 8000
MAX_AUDIO_RATE_HZ = 48000
MAX_TEXT_CHARS = 1000
MAX_ID_CHARS = 64

# Error codes carried by `error` events.
E_BAD_JSON = "bad_json"                  # the text frame is not a JSON object
E_BAD_MESSAGE = "bad_message"            # a field is missing, of the wrong type or out of range
E_UNKNOWN_TYPE = "unknown_type"          # `type` names no client message
E_UNSUPPORTED_VERSION = "unsupported_version"
E_RATE_LIMITED = "rate_limited"          # too many messages per second; the message was dropped
E_AUDIO_NOT_STARTED = "audio_not_started"  # binary frame without a preceding audio.start
E_BAD_AUDIO = "bad_audio"                # binary frame not a whole number of samples, or too large
E_AUDIO_OVERFLOW = "audio_overflow"      # remote audio arrived faster than it is processed; frames dropped
E_BAD_STATE = "bad_state"                # e.g. audio.start while a stream is already open
E_UNAVAILABLE = "unavailable"            # a component (recognizer, recommender) is not loaded
E_STARTUP_BUFFER_FULL = "startup_buffer_full"  # more than [server] startup_buffer_s of audio came before the recognizer was ready
E_STORAGE = "storage"                    # the preference store could not record it (disk full, locked, I/O); nothing changed
E_PLAYER = "player"                      # the music player (MPD) is unreachable or refused an action; the message says which
E_INTERNAL = "internal"                  # a bug; the message says what failed


class ProtocolError(Exception):
    """A message that cannot be accepted; becomes an `error` event with `code`."""

    def __init__(self, code: str, message: str, request: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.request = request


def now_s() -> float:
    """The `ts` of a new event: Unix time in seconds, millisecond resolution."""
    return round(time.time(), 3)


# ---------------------------------------------------------------------------
# Field checking shared by both directions


def _type_ok(value: Any, typ: Any) -> bool:
    origin = typing.get_origin(typ)
    if typ is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, t) for t in typing.get_args(typ))
    if typ is type(None):
        return value is None
    if typ is bool:
        return isinstance(value, bool)
    if typ is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if typ is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin is list or typ is list:
        args = typing.get_args(typ)
        return isinstance(value, list) and (not args or all(_type_ok(v, args[0]) for v in value))
    if origin is dict or typ is dict:
        return isinstance(value, dict)
    if dataclasses.is_dataclass(typ):
        return isinstance(value, dict)
    return isinstance(value, typ)


def _type_name(typ: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             dict: "an object", list: "a list", type(None): "null"}
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(t) for t in typing.get_args(typ))
    if typing.get_origin(typ) is list:
        return "a list"
    if typing.get_origin(typ) is dict or dataclasses.is_dataclass(typ):
        return "an object"
    return names.get(typ, getattr(typ, "__name__", str(typ)))


def _build(cls: type, data: dict, where: str) -> Any:
    """dict -> dataclass `cls`, checking presence and type of every field."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    request = data.get("id") if isinstance(data.get("id"), str) else None
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ProtocolError(E_BAD_MESSAGE, f"{where}: missing field '{f.name}'", request)
            continue
        value = data[f.name]
        typ = hints[f.name]
        if not _type_ok(value, typ):
            raise ProtocolError(E_BAD_MESSAGE, f"{where}: field '{f.name}' must be {_type_name(typ)}, got {json.dumps(value)[:60]}", request)
        if dataclasses.is_dataclass(typ) and isinstance(value, dict):
            value = _build(typ, value, f"{where}.{f.name}")
        if isinstance(value, int) and not isinstance(value, bool) and typ is float:
            value = float(value)
        values[f.name] = value
    return cls(**values)


def _as_dict(obj: Any) -> dict:
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        out[f.name] = _as_dict(value) if dataclasses.is_dataclass(value) else value
    return out


# ---------------------------------------------------------------------------
# Messages: one base class per direction, a registry from `type` to class.


@dataclass(frozen=True, kw_only=True)
class Message:
    """Base of every message: `type` (class constant), `v` and `ts`."""

    type: ClassVar[str] = ""
    v: int = PROTOCOL_VERSION
    ts: float = field(default_factory=now_s)

    def to_dict(self) -> dict:
        return {"type": self.type, **_as_dict(self)}

    def to_json(self) -> str:
        text = json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (an undecodable file name, say): escaped, so the frame is valid UTF-8
            text = json.dumps(self.to_dict(), separators=(",", ":"))
        return text


# ----- server -> client ----------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ServerEvent(Message):
    """An event the daemon sends. `droppable` events are shed first by slow clients."""

    droppable: ClassVar[bool] = False
    coalesce: ClassVar[bool] = False  # only the newest queued one matters


@dataclass(frozen=True, kw_only=True)
class Hello(ServerEvent):
    """First message on every connection: who we are and a snapshot of the latest state."""

    type: ClassVar[str] = "hello"
    session: str                 # this connection's id
    server: str                  # "assistant/0.1.0"
    instance: str                # changes when the daemon restarts
    config: dict = field(default_factory=dict)     # summary: listen mode, wake phrase, audio rate, ...
    snapshot: dict = field(default_factory=dict)   # {"status": {...}, "transcript": {...}|null, "intent": {...}|null, "recommendations": {...}|null}


@dataclass(frozen=True, kw_only=True)
class Status(ServerEvent):
    """Listening state, inputs and component health; sent on every change."""

    type: ClassVar[str] = "status"
    coalesce: ClassVar[bool] = True
    listening: bool                         # a microphone or file input is open
    mode: str                               # "always" or "wake_phrase"
    ready: bool = False                     # loading is over: audio is recognized now (before, it is kept for later)
    input: dict                             # {"kind", "device", "state", "error", "sample_rate_hz"}
    remote_sources: int = 0                 # open remote audio streams
    asr: dict = field(default_factory=dict)          # {"ready": bool, "error": str|null, "final_pass": "whisper"|"ctc", "final_pass_model": str, "final_pass_error": str|null}
    recommender: dict = field(default_factory=dict)  # {"ready": bool, "error": str|null}
    clients: int = 0
    player: dict = field(default_factory=dict)       # {"backend": "web"} or {"backend": "mpd", "connected", "error", "state", "song", "ducked"}
    voices: dict = field(default_factory=dict)       # issue 18: {"enabled", "active", "enrolled": [names], "error": str|null}
    echo_cancel: dict = field(default_factory=dict)  # {"enabled": bool, "sources": {source: {"state", "error"}}} (streams with a reference)


@dataclass(frozen=True, kw_only=True)
class VadStart(ServerEvent):
    """Speech began on a source; an utterance is open."""

    type: ClassVar[str] = "vad.start"
    source: str
    utterance: str
    speech_start_ms: int    # position in the source's stream (ms since the source opened)


@dataclass(frozen=True, kw_only=True)
class VadEnd(ServerEvent):
    """The utterance ended. `accepted` is false when it was shorter than the minimum."""

    type: ClassVar[str] = "vad.end"
    source: str
    utterance: str
    speech_end_ms: int      # end of the last voiced frame, in source stream time
    duration_ms: int        # speech_end_ms - speech_start_ms
    reason: str             # "silence", "max_length" or "end_of_input"
    accepted: bool = True


@dataclass(frozen=True, kw_only=True)
class TranscriptPartial(ServerEvent):
    """The running greedy transcript of an open utterance (at least every 160 ms)."""

    type: ClassVar[str] = "transcript.partial"
    droppable: ClassVar[bool] = True
    source: str
    utterance: str
    text: str
    audio_ms: int           # utterance audio decoded so far


@dataclass(frozen=True, kw_only=True)
class TranscriptFinal(ServerEvent):
    """The final, catalog-biased transcript. `command` is what gets parsed ("" if ignored)."""

    type: ClassVar[str] = "transcript.final"
    source: str
    utterance: str
    text: str
    command: str            # text without the wake phrase; "" when the utterance is ignored
    accepted: bool          # false: no wake phrase (wake_phrase mode) or empty text
    audio_ms: int
    names: list = field(default_factory=list)  # catalog names the audio put in place of what was heard:
                                               # [{"name", "heard", "match", "score"}]
    # Added for voice profiles (issue 18): who spoke, when voices are enrolled (null otherwise):
    # {"user": the profile used, "recognized": bool, "score": cosine with the nearest voice, "nearest": its name}
    speaker: dict | None = None


@dataclass(frozen=True, kw_only=True)
class IntentEvent(ServerEvent):
    """The parsed command."""

    type: ClassVar[str] = "intent"
    utterance: str
    name: str               # play, recommend, similar, next, ..., none
    slots: dict = field(default_factory=dict)  # names as heard; year a number or {"from", "to"}
    confidence: float | None = None  # 0..1, the parser's confidence
    text: str = ""          # the command text that was parsed
    source: str | None = None       # audio source, or null for a typed query
    request: str | None = None      # the query's `id`, when it had one
    user: str = ""
    # Added in 0.2 (v1 clients may ignore it): name slot -> its catalog match beside what was heard,
    # {"id": song id of a track match or null, "name", "score": 0..1, "confident": bool, "songs": count}.
    matches: dict = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Recommendations(ServerEvent):
    """Ranked songs for an utterance or query, each with its reasons."""

    type: ClassVar[str] = "recommendations"
    utterance: str
    intent: str
    items: list[dict] = field(default_factory=list)   # {"id","title","artist",...,"score","reasons"}
    source: str | None = None
    request: str | None = None
    user: str = ""


@dataclass(frozen=True, kw_only=True)
class AnswerEvent(ServerEvent):
    """The answer to a question about the music ("who sings this"), from the catalog."""

    type: ClassVar[str] = "answer"
    utterance: str
    question: str           # song, artist, album, year or genre
    text: str               # one sentence to show (or speak)
    song: dict | None = None  # {"id","title","artist","album","year","genres"}; null when nothing is playing
    source: str | None = None
    request: str | None = None
    user: str = ""


@dataclass(frozen=True, kw_only=True)
class VoiceEvent(ServerEvent):
    """Voice profiles (issue 18): an enrolment, a deletion or a correction, and how it went."""

    type: ClassVar[str] = "voice"
    action: str             # "enrol", "forget" or "correct"
    state: str              # "listening" (say more sentences), "enrolled", "refused", "forgotten", "corrected", "failed"
    name: str = ""          # the person
    message: str = ""       # one sentence to show: what happened, or why not and what to do
    warnings: list = field(default_factory=list)   # e.g. a voice very close to another enrolled person's
    enrolled: list = field(default_factory=list)   # everyone enrolled now
    utterance: str | None = None
    source: str | None = None
    request: str | None = None


@dataclass(frozen=True, kw_only=True)
class ErrorEvent(ServerEvent):
    """Something a client sent, or the daemon itself, failed. The connection stays up."""

    type: ClassVar[str] = "error"
    code: str
    message: str
    request: str | None = None      # the offending message's `id`, when known
    source: str | None = None
    utterance: str | None = None


@dataclass(frozen=True, kw_only=True)
class Ack(ServerEvent):
    """A client message was accepted (feedback, audio.start, audio.end)."""

    type: ClassVar[str] = "ack"
    of: str                          # the acknowledged message type
    request: str | None = None
    source: str | None = None        # audio.start: the id of the new remote source


@dataclass(frozen=True, kw_only=True)
class Pong(ServerEvent):
    type: ClassVar[str] = "pong"
    request: str | None = None


# ----- client -> server ----------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ClientMessage(Message):
    """A message a client sends. `id` is optional and echoed as `request` in replies."""

    id: str | None = None

    def validate(self) -> None:
        if self.id is not None and not (0 < len(self.id) <= MAX_ID_CHARS):
            raise ProtocolError(E_BAD_MESSAGE, f"{self.type}: 'id' must be 1 to {MAX_ID_CHARS} characters")


def _check_user(msg: ClientMessage, user: str | None) -> None:
    if user is not None and not (0 < len(user) <= MAX_ID_CHARS):
        raise ProtocolError(E_BAD_MESSAGE, f"{msg.type}: 'user' must be 1 to {MAX_ID_CHARS} characters", msg.id)


@dataclass(frozen=True, kw_only=True)
class Query(ClientMessage):
    """A typed command, handled exactly like a spoken one."""

    type: ClassVar[str] = "query"
    text: str
    user: str | None = None

    def validate(self) -> None:
        super().validate()
        _check_user(self, self.user)
        if not self.text.strip() or len(self.text) > MAX_TEXT_CHARS:
            raise ProtocolError(E_BAD_MESSAGE, f"query: 'text' must be 1 to {MAX_TEXT_CHARS} characters", self.id)


@dataclass(frozen=True, kw_only=True)
class Feedback(ClientMessage):
    """What the listener did with a song."""

    type: ClassVar[str] = "feedback"
    song_id: str
    kind: str                # one of FEEDBACK_KINDS
    user: str | None = None

    def validate(self) -> None:
        super().validate()
        _check_user(self, self.user)
        if self.kind not in FEEDBACK_KINDS:
            raise ProtocolError(E_BAD_MESSAGE, f"feedback: 'kind' must be one of {', '.join(FEEDBACK_KINDS)}, got {self.kind!r}", self.id)
        if not (0 < len(self.song_id) <= 256):
            raise ProtocolError(E_BAD_MESSAGE, "feedback: 'song_id' must be 1 to 256 characters", self.id)


@dataclass(frozen=True)
class AudioFormat:
    """How the binary frames after `audio.start` are encoded."""

    encoding: str = "pcm_s16le"      # or "pcm_f32le"
    sample_rate_hz: int = 16000      # 8000 to 48000; resampled to 16 kHz
    channels: int = 1                # 1 or 2 (averaged to mono)
    # With 2 channels: the channel (0 or 1) that carries what the speakers play (the echo reference);
    # the other is the microphone, and the daemon cancels the echo of the reference in it ([audio] echo_cancel).
    echo_reference_channel: int | None = None

    @property
    def bytes_per_frame(self) -> int:
        """Bytes of one sample frame (all channels)."""
        return (2 if self.encoding == "pcm_s16le" else 4) * self.channels


@dataclass(frozen=True, kw_only=True)
class AudioStart(ClientMessage):
    """Open a remote audio stream from this client (one at a time per connection)."""

    type: ClassVar[str] = "audio.start"
    format: AudioFormat = field(default_factory=AudioFormat)
    user: str | None = None

    def validate(self) -> None:
        super().validate()
        _check_user(self, self.user)
        f = self.format
        if f.encoding not in AUDIO_ENCODINGS:
            raise ProtocolError(E_BAD_MESSAGE, f"audio.start: format.encoding must be one of {', '.join(AUDIO_ENCODINGS)}, got {f.encoding!r}", self.id)
        if not MIN_AUDIO_RATE_HZ <= f.sample_rate_hz <= MAX_AUDIO_RATE_HZ:
            raise ProtocolError(E_BAD_MESSAGE, f"audio.start: format.sample_rate_hz must be {MIN_AUDIO_RATE_HZ} to {MAX_AUDIO_RATE_HZ}, got {f.sample_rate_hz}", self.id)
        if f.channels not in (1, 2):
            raise ProtocolError(E_BAD_MESSAGE, f"audio.start: format.channels must be 1 or 2, got {f.channels}", self.id)
        if f.echo_reference_channel is not None and (f.channels != 2 or f.echo_reference_channel not in (0, 1)):
            raise ProtocolError(E_BAD_MESSAGE, "audio.start: format.echo_reference_channel must be 0 or 1 with channels 2 "
                                f"(the other channel is the microphone), got {f.echo_reference_channel} with channels {f.channels}", self.id)


@dataclass(frozen=True, kw_only=True)
class AudioEnd(ClientMessage):
    """Close this client's remote audio stream; an open utterance is finished."""

    type: ClassVar[str] = "audio.end"


@dataclass(frozen=True, kw_only=True)
class Ping(ClientMessage):
    type: ClassVar[str] = "ping"


MAX_VOICE_NAME_CHARS = 60
MAX_VOICE_RECORDINGS = 5


def _check_voice_name(msg: ClientMessage, name: str) -> None:
    if not name.strip() or len(name) > MAX_VOICE_NAME_CHARS:
        raise ProtocolError(E_BAD_MESSAGE, f"{msg.type}: 'name' must be 1 to {MAX_VOICE_NAME_CHARS} characters", msg.id)


@dataclass(frozen=True, kw_only=True)
class VoiceEnrol(ClientMessage):
    """Enrol a person's voice (issue 18) from recordings of them alone: base64 of 16 kHz mono pcm_s16le each."""

    type: ClassVar[str] = "voice.enrol"
    name: str
    recordings: list[str]

    def validate(self) -> None:
        super().validate()
        _check_voice_name(self, self.name)
        if not 1 <= len(self.recordings) <= MAX_VOICE_RECORDINGS or not all(isinstance(r, str) and r for r in self.recordings):
            raise ProtocolError(E_BAD_MESSAGE, f"voice.enrol: 'recordings' must be 1 to {MAX_VOICE_RECORDINGS} base64 "
                                "strings of 16 kHz mono pcm_s16le audio", self.id)


@dataclass(frozen=True, kw_only=True)
class VoiceForget(ClientMessage):
    """Delete a person's enrolled voice (every embedding of theirs)."""

    type: ClassVar[str] = "voice.forget"
    name: str

    def validate(self) -> None:
        super().validate()
        _check_voice_name(self, self.name)


@dataclass(frozen=True, kw_only=True)
class VoiceCorrect(ClientMessage):
    """An utterance was someone else's: the feedback given for its songs moves from `from_user` to `user`."""

    type: ClassVar[str] = "voice.correct"
    utterance: str
    user: str
    from_user: str
    feedback: list = field(default_factory=list)   # what was sent for that utterance's songs: [{"song_id", "kind"}]

    def validate(self) -> None:
        super().validate()
        _check_user(self, self.user)
        _check_user(self, self.from_user)
        if not 0 < len(self.utterance) <= MAX_ID_CHARS:
            raise ProtocolError(E_BAD_MESSAGE, f"voice.correct: 'utterance' must be 1 to {MAX_ID_CHARS} characters", self.id)
        ok = len(self.feedback) <= 100 and all(
            isinstance(f, dict) and isinstance(f.get("song_id"), str) and 0 < len(f["song_id"]) <= 256
            and f.get("kind") in FEEDBACK_KINDS for f in self.feedback)
        if not ok:
            raise ProtocolError(E_BAD_MESSAGE, "voice.correct: 'feedback' must be up to 100 objects with 'song_id' and "
                                f"'kind' (one of {', '.join(FEEDBACK_KINDS)})", self.id)


SERVER_EVENTS: dict[str, type[ServerEvent]] = {
    c.type: c for c in (Hello, Status, VadStart, VadEnd, TranscriptPartial, TranscriptFinal,
                        IntentEvent, Recommendations, AnswerEvent, VoiceEvent, ErrorEvent, Ack, Pong)
}
CLIENT_MESSAGES: dict[str, type[ClientMessage]] = {
    c.type: c for c in (Query, Feedback, AudioStart, AudioEnd, Ping, VoiceEnrol, VoiceForget, VoiceCorrect)
}


def _decode(text: str | bytes, registry: dict[str, type]) -> Any:
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(E_BAD_JSON, f"message is not valid JSON ({exc})") from None
    except RecursionError:
        raise ProtocolError(E_BAD_JSON, "message is nested too deeply; expected a flat JSON object") from None
    if isinstance(text, str) and _SURROGATE_ESCAPE.search(text) and not _encodable(data):
        raise ProtocolError(E_BAD_JSON, "message holds an unpaired UTF-16 surrogate (\\ud800 to \\udfff); expected valid Unicode text")
    if not isinstance(data, dict):
        raise ProtocolError(E_BAD_JSON, f"message must be a JSON object, got {type(data).__name__}")
    request = data.get("id") if isinstance(data.get("id"), str) else None
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(E_BAD_MESSAGE, "message has no 'type' string", request)
    v = data.get("v", PROTOCOL_VERSION)
    if v != PROTOCOL_VERSION:
        raise ProtocolError(E_UNSUPPORTED_VERSION, f"{kind}: protocol version {v!r} is not supported; this daemon speaks v{PROTOCOL_VERSION}", request)
    cls = registry.get(kind)
    if cls is None:
        raise ProtocolError(E_UNKNOWN_TYPE, f"unknown message type {kind[:40]!r}; expected one of: {', '.join(registry)}", request)
    fields = {f.name for f in dataclasses.fields(cls)} | {"type"}
    unknown = sorted(set(data) - fields)
    if unknown and registry is CLIENT_MESSAGES:
        raise ProtocolError(E_BAD_MESSAGE, f"{kind}: unknown field '{unknown[0][:40]}'; expected: {', '.join(sorted(fields - {'v', 'ts'}))}", request)
    known = {k: v for k, v in data.items() if k in fields and k != "type"}
    return _build(cls, known, kind)


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _encodable(data: Any) -> bool:
    """True when every string in `data` is valid Unicode (no lone surrogate from a \\udXXX escape)."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def parse_client_message(text: str | bytes) -> ClientMessage:
    """A client's text frame -> a validated ClientMessage, or ProtocolError."""
    msg = _decode(text, CLIENT_MESSAGES)
    msg.validate()
    return msg


def parse_server_event(text: str | bytes) -> ServerEvent:
    """A daemon's text frame -> its ServerEvent (for clients and tests).

    Unknown fields are ignored, so a v1 client keeps working when later
    daemons add fields.
    """
    return _decode(text, SERVER_EVENTS)
