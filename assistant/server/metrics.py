"""Prometheus text exposition for the daemon's counters, gauges and histograms.

A few dozen lines instead of a dependency: the daemon only needs to render
its own metrics for `/metrics`. Metric names follow Prometheus conventions
(`_total` counters, `_seconds` histograms).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable

LATENCY_BUCKETS_S: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0)


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(x: float) -> str:
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return repr(float(x)) if not float(x).is_integer() else str(int(x))


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, labels: Iterable[str] = ()):
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Iterable[str] = ()):
        super().__init__(name, help_text, labels)
        self.values: dict[tuple[str, ...], float] = {} if self.label_names else {(): 0.0}

    def inc(self, amount: float = 1.0, *labels: str) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def get(self, *labels: str) -> float:
        return self.values.get(labels, 0.0)

    def render(self) -> list[str]:
        return self.header() + [f"{self.name}{_labels(self.label_names, k)} {_num(v)}" for k, v in sorted(self.values.items())]


class Gauge(_Metric):
    """A value read when rendered: `fn` returns {label values: value} (or a number when unlabelled)."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str, fn: Callable[[], float | dict[tuple[str, ...], float]], labels: Iterable[str] = ()):
        super().__init__(name, help_text, labels)
        self.fn = fn

    def render(self) -> list[str]:
        value = self.fn()
        items = value.items() if isinstance(value, dict) else [((), value)]
        return self.header() + [f"{self.name}{_labels(self.label_names, k)} {_num(v)}" for k, v in sorted(items)]


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Iterable[float] = LATENCY_BUCKETS_S):
        super().__init__(name, help_text)
        self.bounds = tuple(sorted(buckets))
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def render(self) -> list[str]:
        lines = self.header()
        cumulative = 0
        for bound, n in zip((*self.bounds, math.inf), self.counts):
            cumulative += n
            lines.append(f'{self.name}_bucket{{le="{_num(bound)}"}} {cumulative}')
        lines += [f"{self.name}_sum {_num(round(self.sum, 6))}", f"{self.name}_count {self.count}"]
        return lines


class Registry:
    def __init__(self) -> None:
        self.metrics: list[_Metric] = []

    def add(self, metric: _Metric) -> _Metric:
        self.metrics.append(metric)
        return metric

    def render(self) -> str:
        lines: list[str] = []
        for m in self.metrics:
            lines += m.render()
        return "\n".join(lines) + "\n"


class DaemonMetrics:
    """The daemon's metrics, by name. Gauges are wired later with `gauge()`."""

    def __init__(self) -> None:
        r = self.registry = Registry()
        self.utterances = r.add(Counter("assistant_utterances_total", "Utterances by outcome (command, ignored, too_short, failed).", ["outcome"]))
        self.queries = r.add(Counter("assistant_queries_total", "Typed queries handled."))
        self.feedback = r.add(Counter("assistant_feedback_total", "Feedback events received, by kind.", ["kind"]))
        self.final_latency = r.add(Histogram("assistant_final_latency_seconds", "End of speech to transcript.final."))
        self.recs_latency = r.add(Histogram("assistant_recommendations_latency_seconds", "End of speech to recommendations (spoken commands)."))
        self.query_latency = r.add(Histogram("assistant_query_latency_seconds", "Typed query to recommendations."))
        self.speculative_finals = r.add(Counter("assistant_speculative_finals_total", "Finals decoded at a pause: used at the endpoint, or discarded because speech resumed.", ["outcome"]))
        self.final_pass = r.add(Counter("assistant_final_pass_total", "Finals when a second pass is configured, by outcome: whisper or ctc (the rule's choice), dropped (no speech or low confidence), budget (not ready within final_pass_budget_ms: the CTC final was sent), busy (earlier passes still running: CTC final), failed.", ["outcome"]))
        self.final_pass_seconds = r.add(Histogram("assistant_final_pass_seconds", "Second pass compute time per utterance (features, encoder, decoder)."))
        self.final_choice_seconds = r.add(Histogram("assistant_final_choice_seconds", "The choice between the passes and the catalog rescoring of the final, per utterance (after the endpoint).", (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25)))
        self.asr_step = r.add(Histogram("assistant_asr_step_seconds", "Recognizer time per streaming chunk.", (0.005, 0.01, 0.02, 0.05, 0.1, 0.16, 0.25, 0.5, 1.0)))
        self.audio_seconds = r.add(Counter("assistant_audio_seconds_total", "Audio received, by source kind.", ["kind"]))
        self.dropped_frames = r.add(Counter("assistant_audio_dropped_frames_total", "Audio blocks dropped because a queue was full, by source kind.", ["kind"]))
        self.dropped_events = r.add(Counter("assistant_events_dropped_total", "Events not delivered to slow clients (partial, status) and slow clients closed (disconnect).", ["reason"]))
        self.refused = r.add(Counter("assistant_messages_refused_total", "Client messages refused, by error code.", ["code"]))
        self.connections = r.add(Counter("assistant_connections_total", "WebSocket connections accepted."))
        self.http_refused = r.add(Counter("assistant_http_refused_total", "HTTP / WebSocket handshakes refused, by status.", ["status"]))

    def gauge(self, name: str, help_text: str, fn: Callable, labels: Iterable[str] = ()) -> None:
        self.registry.add(Gauge(name, help_text, fn, labels))

    def render(self) -> str:
        return self.registry.render()
