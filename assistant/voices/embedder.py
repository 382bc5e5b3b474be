"""16 kHz audio -> a 256-d voice embedding, with resemblyzer's pretrained speaker encoder.

The `resemblyzer` package (Apache-2.0) ships `pretrained.pt` (GE2E-trained,
3-layer LSTM over 40 mel bands, 1.6 s windows). Importing the package itself
pulls librosa, so only the weights file is read here and the network and its
front end are rebuilt: volume raised to -30 dBFS (never lowered), silences
longer than about 0.2 s cut out with webrtcvad (mode 3, 30 ms windows, smoothed
as resemblyzer does), a centred 400-sample Hann STFT every 160 samples, power
through 40 Slaney mel filters (librosa's `melspectrogram`, not log), windows of
160 frames at 1.3 a second; the utterance's embedding is the normalized mean of
the windows' embeddings.

    VoiceEmbedder.load()          the weights, from the installed package (never downloaded)
    embedder.embed(audio)         -> Embedding(vector, windows, speech_s)
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from assistant.asr.whisper_features import WhisperFeatureConfig, slaney_mel_filterbank
from assistant.errors import AssistantError

SAMPLE_RATE_HZ = 16000
N_FFT = 400
HOP = 160                  # 10 ms
N_MELS = 40
WINDOW_FRAMES = 160        # 1.6 s per window
WINDOWS_PER_S = 1.3
MIN_WINDOW_COVERAGE = 0.75
EMBEDDING_DIM = 256
HIDDEN = 256
LAYERS = 3
TARGET_DBFS = -30.0
INT16_MAX = 2 ** 15 - 1
VAD_WINDOW_MS = 30
VAD_AVERAGE_WIDTH = 8      # windows averaged to smooth the VAD's decisions
VAD_MAX_SILENCE = 6        # windows of silence kept around speech
WEIGHTS_PACKAGE = "resemblyzer"
WEIGHTS_FILE = "pretrained.pt"


@dataclass(frozen=True)
class Embedding:
    vector: np.ndarray     # (EMBEDDING_DIM,) float32, unit length
    windows: np.ndarray    # (n, EMBEDDING_DIM) the 1.6 s windows' unit embeddings
    speech_s: float        # audio left after long silences were cut


class SpeakerLstm(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(N_MELS, HIDDEN, LAYERS, batch_first=True)
        self.linear = nn.Linear(HIDDEN, EMBEDDING_DIM)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        """mels (B, WINDOW_FRAMES, N_MELS) -> (B, EMBEDDING_DIM) unit vectors."""
        _, (hidden, _) = self.lstm(mels)
        raw = torch.relu(self.linear(hidden[-1]))
        return raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-12)


def default_weights_path() -> Path:
    """pretrained.pt inside the installed resemblyzer package, found without importing it."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise AssistantError(f"the speaker encoder is not installed: expected the {WEIGHTS_PACKAGE!r} package "
                             "(pip install --no-deps resemblyzer; scripts/setup.sh does it)")
    return Path(list(spec.submodule_search_locations)[0]) / WEIGHTS_FILE


def raise_volume(audio: np.ndarray) -> np.ndarray:
    """To TARGET_DBFS when quieter; louder audio is left as it is."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if len(audio) else 0.0
    if rms <= 0.0:
        return audio
    gain_db = TARGET_DBFS - 20 * np.log10(rms)
    return audio * np.float32(10 ** (gain_db / 20)) if gain_db > 0 else audio


def voiced_windows(audio: np.ndarray) -> np.ndarray:
    """webrtcvad (mode 3) per 30 ms window, smoothed and widened as resemblyzer does: bool (n_windows,)."""
    import webrtcvad
    from scipy.ndimage import binary_dilation

    win = VAD_WINDOW_MS * SAMPLE_RATE_HZ // 1000
    n = len(audio) // win
    if n == 0:
        return np.zeros(0, dtype=bool)
    pcm = (np.clip(audio[: n * win], -1, 1) * INT16_MAX).round().astype("<i2").tobytes()
    vad = webrtcvad.Vad(3)
    flags = np.array([vad.is_speech(pcm[i * win * 2:(i + 1) * win * 2], SAMPLE_RATE_HZ) for i in range(n)], dtype=float)
    width = VAD_AVERAGE_WIDTH
    padded = np.concatenate((np.zeros((width - 1) // 2), flags, np.zeros(width // 2)))
    sums = np.cumsum(padded)
    sums[width:] = sums[width:] - sums[:-width]
    smoothed = np.round(sums[width - 1:] / width).astype(bool)
    return binary_dilation(smoothed, np.ones(VAD_MAX_SILENCE + 1))


def cut_long_silences(audio: np.ndarray) -> np.ndarray:
    win = VAD_WINDOW_MS * SAMPLE_RATE_HZ // 1000
    mask = voiced_windows(audio)
    return audio[: len(mask) * win][np.repeat(mask, win)]


def window_slices(n_samples: int) -> list[slice]:
    """Frame ranges of the 1.6 s windows covering n_samples (resemblyzer's compute_partial_slices)."""
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    step = int(np.round(SAMPLE_RATE_HZ / WINDOWS_PER_S / HOP))
    starts = range(0, max(1, n_frames - WINDOW_FRAMES + step + 1), step)
    slices = [slice(s, s + WINDOW_FRAMES) for s in starts]
    last = slices[-1]
    coverage = (n_samples - last.start * HOP) / (WINDOW_FRAMES * HOP)
    if coverage < MIN_WINDOW_COVERAGE and len(slices) > 1:
        slices = slices[:-1]
    return slices


class VoiceEmbedder:
    def __init__(self, network: SpeakerLstm):
        self.network = network.eval()
        self.mel_fb = slaney_mel_filterbank(WhisperFeatureConfig(n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS))
        self.window = torch.hann_window(N_FFT, periodic=True)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "VoiceEmbedder":
        path = Path(path) if path else default_weights_path()
        if not path.is_file():
            raise AssistantError(f"speaker encoder weights {path} not found; reinstall the {WEIGHTS_PACKAGE!r} package")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
            network = SpeakerLstm()
            network.load_state_dict({k: v for k, v in state.items() if k.startswith(("lstm.", "linear."))})
        except Exception as exc:  # noqa: BLE001 - torch.load raises many kinds for a damaged file
            raise AssistantError(f"speaker encoder weights {path} are damaged or of another model "
                                 f"({str(exc).splitlines()[0][:120]})") from None
        return cls(network)

    def mel(self, audio: np.ndarray) -> torch.Tensor:
        """Power mel frames (n_frames, N_MELS), centred frames with zero padding (librosa >= 0.10)."""
        spec = torch.stft(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)), n_fft=N_FFT, hop_length=HOP,
                          window=self.window, center=True, pad_mode="constant", return_complex=True)
        power = spec.real.square() + spec.imag.square()
        return power.transpose(0, 1) @ self.mel_fb

    def prepare(self, audio: np.ndarray) -> np.ndarray:
        """Volume raised, long silences cut: what the network hears."""
        return cut_long_silences(raise_volume(np.asarray(audio, dtype=np.float32)))

    def embed_prepared(self, speech: np.ndarray) -> Embedding:
        slices = window_slices(len(speech))
        need = slices[-1].stop * HOP
        padded = np.pad(speech, (0, max(0, need - len(speech))))
        mel = self.mel(padded)
        if mel.shape[0] < slices[-1].stop:
            mel = torch.nn.functional.pad(mel, (0, 0, 0, slices[-1].stop - mel.shape[0]))
        with torch.inference_mode():
            windows = self.network(torch.stack([mel[s] for s in slices])).numpy()
        mean = windows.mean(axis=0)
        return Embedding(vector=(mean / max(np.linalg.norm(mean), 1e-12)).astype(np.float32), windows=windows,
                         speech_s=len(speech) / SAMPLE_RATE_HZ)

    def embed(self, audio: np.ndarray) -> Embedding:
        """16 kHz float audio -> its Embedding (speech_s 0 and a zero vector when nothing voiced is left)."""
        speech = self.prepare(audio)
        if len(speech) == 0:
            return Embedding(np.zeros(EMBEDDING_DIM, np.float32), np.zeros((0, EMBEDDING_DIM), np.float32), 0.0)
        return self.embed_prepared(speech)
