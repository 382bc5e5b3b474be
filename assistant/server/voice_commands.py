"""Voice profiles in the daemon (issue 18): spoken and typed voice commands, the page's voice messages.

    VoiceDialog.intercept(text, origin)   before the intent parser: "remember my voice as Anna" starts an
                                          enrolment that takes this utterance and the source's next two;
                                          "forget my voice" / "forget the voice of Anna" deletes one
    VoiceDialog.enrol / forget            the page's voice.enrol / voice.forget messages

Every outcome is a `voice` event (enrolled, refused with the reason, forgotten, ...). The store and the
embedder are only touched on the "voices" worker thread.
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass, field

import numpy as np

from assistant.audio.io import pcm16_to_float
from assistant.errors import AssistantError, StorageError
from assistant.server import protocol as p
from assistant.server.hub import Hub
from assistant.server.workers import Worker
from assistant.voices.phrases import match_voice_command
from assistant.voices.speech_check import NotOneSpeaker

ENROL_RECORDINGS = 3          # spoken enrolment: "remember my voice as Anna" and two more sentences
ENROL_TIMEOUT_S = 60.0        # the two more sentences must come within this
MAX_RECORDING_BYTES = 16000 * 2 * 30


@dataclass
class _Pending:
    name: str
    recordings: list = field(default_factory=list)
    deadline: float = 0.0


class VoiceDialog:
    def __init__(self, service, worker: Worker, hub: Hub, default_user: str, on_change=lambda: None):
        self.service = service          # assistant.voices.service.VoiceService, or None when [voices] enabled = false
        self.worker = worker
        self.hub = hub
        self.default_user = default_user
        self.on_change = on_change      # the daemon republishes its status
        self.pending: dict[str, _Pending] = {}

    def state(self) -> dict:
        if self.service is None:
            return {"enabled": False, "active": False, "enrolled": [], "error": None}
        return self.service.state().to_dict()

    def _event(self, action: str, state: str, origin=None, request: str | None = None, **kw) -> None:
        enrolled = list(self.service.index.names) if self.service is not None else []
        self.hub.publish(p.VoiceEvent(action=action, state=state, enrolled=enrolled, request=request or getattr(origin, "request", None),
                                      utterance=getattr(origin, "utterance", None), source=getattr(origin, "source", None), **kw))

    def _unavailable(self) -> str | None:
        if self.service is None:
            return "voice profiles are off ([voices] enabled = false)"
        if self.service.store is None:
            return self.service.error
        return None

    def expecting(self, source: str) -> bool:
        """Whether `source`'s next utterance is an enrolment sentence (taken whatever it says)."""
        pending = self.pending.get(source)
        return pending is not None and time.monotonic() <= pending.deadline

    # ------------------------------------------------------------ spoken / typed
    async def intercept(self, text: str, origin) -> bool:
        """True when `text` (with origin.audio for speech) was a voice command or an enrolment sentence."""
        audio = getattr(origin, "audio", None)
        pending = self.pending.get(origin.source) if origin.source else None
        if pending is not None:
            if time.monotonic() > pending.deadline:
                del self.pending[origin.source]
            elif audio is not None:
                pending.recordings.append(audio)
                if len(pending.recordings) < ENROL_RECORDINGS:
                    self._event("enrol", "listening", origin, name=pending.name,
                                message=f"{pending.name}, one more sentence, please")
                else:
                    del self.pending[origin.source]
                    await self._enrol(pending.name, pending.recordings, origin)
                return True
        cmd = match_voice_command(text)
        if cmd is None:
            return False
        why = self._unavailable()
        if why:
            self._event(cmd.action, "failed", origin, name=cmd.name or "", message=why)
        elif cmd.action == "enrol" and audio is None:
            self._event("enrol", "record", origin, name=cmd.name,
                        message=f"Read three sentences aloud for {cmd.name}: use Add a voice, or say it aloud")
        elif cmd.action == "enrol":
            self.pending[origin.source] = _Pending(cmd.name, [audio], time.monotonic() + ENROL_TIMEOUT_S)
            self._event("enrol", "listening", origin, name=cmd.name,
                        message=f"{cmd.name}, say two more sentences, any you like")
        else:
            name = cmd.name or (origin.user if origin.user != self.default_user else None)
            if name is None:
                self._event("forget", "refused", origin, message="I do not know whose voice this is; say "
                            "\"forget the voice of\" and the name, or remove it on the page")
            else:
                await self.forget(name, origin)
        return True

    # ------------------------------------------------------------ both
    async def _enrol(self, name: str, recordings: list[np.ndarray], origin=None, request: str | None = None) -> None:
        try:
            result = await self.worker.call(self.service.enrol, name, recordings)
        except NotOneSpeaker as exc:
            self._event("enrol", "refused", origin, request, name=name, message=f"{name}'s voice was not saved: {exc}")
            return
        except (StorageError, AssistantError) as exc:
            self._event("enrol", "failed", origin, request, name=name, message=str(exc))
            return
        self._event("enrol", "enrolled", origin, request, name=result.name, warnings=list(result.warnings),
                    message=f"I will know {result.name}'s voice now ({result.recordings} recordings, "
                            f"{result.speech_s:.0f} s of speech)")
        self.on_change()

    async def enrol(self, msg: p.VoiceEnrol) -> None:
        why = self._unavailable()
        if why:
            raise p.ProtocolError(p.E_UNAVAILABLE, f"voice.enrol: {why}", msg.id)
        recordings = []
        for i, text in enumerate(msg.recordings, 1):
            try:
                data = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                raise p.ProtocolError(p.E_BAD_MESSAGE, f"voice.enrol: recording {i} is not base64", msg.id) from None
            if len(data) % 2 or not data or len(data) > MAX_RECORDING_BYTES:
                raise p.ProtocolError(p.E_BAD_MESSAGE, f"voice.enrol: recording {i} must be 16 kHz mono pcm_s16le, "
                                      f"1 sample to 30 s (got {len(data)} bytes)", msg.id)
            recordings.append(pcm16_to_float(data))
        await self._enrol(msg.name.strip(), recordings, request=msg.id)

    async def forget(self, name: str, origin=None, request: str | None = None) -> None:
        why = self._unavailable()
        if why:
            self._event("forget", "failed", origin, request, name=name, message=why)
            return
        try:
            removed = await self.worker.call(self.service.forget, name)
        except (StorageError, AssistantError) as exc:
            self._event("forget", "failed", origin, request, name=name, message=str(exc))
            return
        if removed:
            self._event("forget", "forgotten", origin, request, name=name, message=f"{name}'s voice is forgotten")
            self.on_change()
        else:
            self._event("forget", "refused", origin, request, name=name, message=f"no voice named {name!r} is enrolled")
