"""Protocol v1: JSON round trips, validation errors, and docs/protocol.md in sync with the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from assistant.server import protocol as p

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"


def test_every_server_event_round_trips():
    events = [
        p.Hello(session="c1", server="assistant/0.1.0", instance="x", config={"mode": "always"}, snapshot={"status": None}),
        p.Status(listening=True, mode="always", input={"kind": "microphone", "state": "open"}),
        p.VadStart(source="mic", utterance="u1", speech_start_ms=10),
        p.VadEnd(source="mic", utterance="u1", speech_end_ms=900, duration_ms=890, reason="silence"),
        p.TranscriptPartial(source="mic", utterance="u1", text="pla", audio_ms=160),
        p.TranscriptFinal(source="mic", utterance="u1", text="play", command="play", accepted=True, audio_ms=900),
        p.IntentEvent(utterance="u1", name="play", slots={"artist": "adele", "year": {"from": 1990, "to": 1999}},
                      text="play adele", source="mic", matches={"artist": {"id": None, "name": "Adele", "score": 1.0,
                                                                          "confident": True, "songs": 8}}),
        p.Recommendations(utterance="u1", intent="play", items=[{"id": "s1", "title": "T", "score": 1.0, "reasons": []}]),
        p.AnswerEvent(utterance="u2", question="artist", text='"Hello" is by Adele.',
                      song={"id": "s1", "title": "Hello", "artist": "Adele", "album": None, "year": 2015, "genres": []}),
        p.VoiceEvent(action="enrol", state="enrolled", name="Anna", enrolled=["Anna"], warnings=["close to Ben's"]),
        p.ErrorEvent(code=p.E_BAD_JSON, message="no"),
        p.Ack(of="feedback", request="f1"),
        p.Pong(request="p1"),
    ]
    assert {e.type for e in events} == set(p.SERVER_EVENTS)
    for e in events:
        d = json.loads(e.to_json())
        assert d["type"] == e.type and d["v"] == p.PROTOCOL_VERSION and isinstance(d["ts"], float)
        assert p.parse_server_event(e.to_json()) == e


def test_client_messages_parse_with_defaults():
    q = p.parse_client_message('{"type": "query", "text": "play adele"}')
    assert isinstance(q, p.Query) and q.text == "play adele" and q.id is None and q.user is None
    a = p.parse_client_message('{"type": "audio.start", "id": "a1"}')
    assert a.format == p.AudioFormat("pcm_s16le", 16000, 1) and a.format.bytes_per_frame == 2
    a = p.parse_client_message('{"type": "audio.start", "format": {"encoding": "pcm_f32le", "sample_rate_hz": 48000, "channels": 2}}')
    assert a.format.bytes_per_frame == 8
    f = p.parse_client_message(b'{"type": "feedback", "v": 1, "song_id": "s1", "kind": "skip", "ts": 12}')
    assert f.kind == "skip"
    assert isinstance(p.parse_client_message('{"type": "ping"}'), p.Ping)
    assert isinstance(p.parse_client_message('{"type": "audio.end"}'), p.AudioEnd)


@pytest.mark.parametrize("text, code, fragment", [
    ("not json", p.E_BAD_JSON, "not valid JSON"),
    ("[1, 2]", p.E_BAD_JSON, "JSON object"),
    (b"\xff\xfe\x00", p.E_BAD_JSON, "not valid JSON"),
    ('{"text": "x"}', p.E_BAD_MESSAGE, "no 'type'"),
    ('{"type": "dance"}', p.E_UNKNOWN_TYPE, "expected one of: query"),
    ('{"type": "query", "v": 2, "text": "x"}', p.E_UNSUPPORTED_VERSION, "speaks v1"),
    ('{"type": "query"}', p.E_BAD_MESSAGE, "missing field 'text'"),
    ('{"type": "query", "text": 5}', p.E_BAD_MESSAGE, "'text' must be a string"),
    ('{"type": "query", "text": "  "}', p.E_BAD_MESSAGE, "1 to 1000"),
    ('{"type": "query", "text": "x", "txet": 1}', p.E_BAD_MESSAGE, "unknown field 'txet'"),
    ('{"type": "feedback", "song_id": "s", "kind": "love"}', p.E_BAD_MESSAGE, "like, dislike, skip, played"),
    ('{"type": "audio.start", "format": {"encoding": "mp3"}}', p.E_BAD_MESSAGE, "pcm_s16le"),
    ('{"type": "audio.start", "format": {"sample_rate_hz": 4000}}', p.E_BAD_MESSAGE, "8000 to 48000"),
    ('{"type": "audio.start", "format": {"channels": 6}}', p.E_BAD_MESSAGE, "1 or 2"),
    ('{"type": "audio.start", "format": "pcm"}', p.E_BAD_MESSAGE, "must be an object"),
    ('{"type": "ping", "id": 7}', p.E_BAD_MESSAGE, "'id' must be a string"),
    ("[" * 100_000, p.E_BAD_JSON, "nested too deeply"),  # found by bench/fuzz_protocol.py: was a RecursionError
    ('{"type": "query", "text": "x", "user": ' + '{"a":' * 50_000 + "1" + "}" * 50_001, p.E_BAD_JSON, "nested too deeply"),
    ('{"type": "query", "text": "a\\ud800b"}', p.E_BAD_JSON, "unpaired UTF-16 surrogate"),  # fuzzer: broke every client's sender
    ('{"type": "feedback", "song_id": "s1", "kind": "like", "user": "\\udfff"}', p.E_BAD_JSON, "unpaired UTF-16 surrogate"),
])
def test_bad_client_messages_are_protocol_errors(text, code, fragment):
    with pytest.raises(p.ProtocolError) as info:
        p.parse_client_message(text)
    assert info.value.code == code
    assert fragment in info.value.message


def test_escaped_surrogate_pairs_are_text_and_every_event_is_valid_utf8():
    assert p.parse_client_message('{"type": "query", "text": "\\ud83c\\udfb5 jazz"}').text == "\U0001f3b5 jazz"
    event = p.IntentEvent(utterance="q1", name="none", slots={}, text="caf\udce9")  # an undecodable file name, say
    data = event.to_json()
    data.encode("utf-8")  # a valid text frame
    assert json.loads(data)["text"] == "caf\udce9"
    assert "é" in p.IntentEvent(utterance="q1", name="none", slots={}, text="café").to_json()  # still UTF-8, not escaped


def test_error_echoes_request_id():
    with pytest.raises(p.ProtocolError) as info:
        p.parse_client_message('{"type": "feedback", "id": "f9", "song_id": "s", "kind": "meh"}')
    assert info.value.request == "f9"


def test_server_events_tolerate_unknown_fields():
    e = p.parse_server_event('{"type": "pong", "v": 1, "ts": 1.0, "request": null, "added_later": 3}')
    assert e == p.Pong(ts=1.0, request=None)


def _doc_examples() -> list[dict]:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    return [json.loads(b) for b in blocks]


def test_docs_have_a_valid_example_of_every_message():
    examples = _doc_examples()
    seen = {e["type"] for e in examples}
    assert set(p.SERVER_EVENTS) <= seen, set(p.SERVER_EVENTS) - seen
    assert set(p.CLIENT_MESSAGES) <= seen, set(p.CLIENT_MESSAGES) - seen
    for e in examples:
        if e["type"] in p.CLIENT_MESSAGES:
            p.parse_client_message(json.dumps(e))
        else:
            p.parse_server_event(json.dumps(e))


def test_docs_list_every_error_code():
    text = DOC.read_text(encoding="utf-8")
    codes = [v for k, v in vars(p).items() if k.startswith("E_")]
    for code in codes:
        assert f"`{code}`" in text, code
