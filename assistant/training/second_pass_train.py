"""Fine-tune the second pass (Whisper tiny.en) for utterance-length audio with low-rank adapters.

The daemon feeds Whisper an utterance plus `pad_ms` of silence, not the 30 s window it was trained on,
and the utterances are short spoken commands, often in noise. This trains adapters (`assistant.asr.adapter`)
on exactly that input: synthesized commands naming songs of a catalog that is not the default one, and real
speech in every batch so the model keeps what it knows (`second_pass_data`), with noise, reverb, speed and
gain drawn per clip, and now and then a names prompt as the daemon gives one (the right name or not).

    python -m assistant.training.second_pass_train --config configs/train_second_pass.toml
        [--steps N]       stop after N more steps (checkpoints every `checkpoint_every`; a rerun resumes)
        [--export PATH]   write the best checkpoint as the shipped adapter and exit

Validation (chosen model, figures in the checkpoint): WER of greedy decoding on a fixed subset of the spoken
validation clips (training voices, default-catalog names; bench/spoken_e2e.py --dump) and on speechocean762's
validation speakers. Never the reserved voices or other evaluation-only data.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from assistant.asr.adapter import ADAPTER_FORMAT, target_layers

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class TrainOptions:
    out_dir: str = "runs/second_pass_ft"
    data_dir: str = "../shared/data"
    default_catalog: str = "index/default_catalog.csv"
    commands_dir: str = "runs/second_pass_ft/commands"   # shards from second_pass_data.synthesize_commands
    valid_manifest: str = "runs/spoken/valid/manifest.jsonl"
    valid_clips_per_level: int = 30
    valid_real_clips: int = 60
    rank: int = 32
    alpha: float = 32.0
    dropout: float = 0.05
    lr: float = 5e-4
    weight_decay: float = 0.0
    warmup_steps: int = 100
    total_steps: int = 1400
    batch_size: int = 12
    command_fraction: float = 0.55
    pad_ms: int = 1000
    edge_max_s: float = 0.4          # up to this much quiet before and after each clip (as the VAD's pre-roll)
    prompt_prob: float = 0.5         # a names prompt on a command ...
    prompt_true_prob: float = 0.6    # ... holding one of its names with this probability
    real_prompt_prob: float = 0.2    # distractor names on real speech
    noise_snr_min_db: float = -5.0
    noise_snr_max_db: float = 20.0
    clean_fraction: float = 0.25
    checkpoint_every: int = 50
    valid_every: int = 200
    seed: int = 1
    threads: int = 1

    def __post_init__(self) -> None:
        for name in ("rank", "batch_size", "total_steps", "checkpoint_every", "valid_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"second pass training: {name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.command_fraction <= 1:
            raise ValueError(f"second pass training: command_fraction must be in 0..1, got {self.command_fraction}")

    @classmethod
    def from_toml(cls, path: str | Path) -> "TrainOptions":
        with open(path, "rb") as f:
            raw = tomllib.load(f).get("train", {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"{path}: unknown [train] keys {unknown}; expected some of {sorted(known)}")
        return cls(**raw)

    def path(self, p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else REPO / q


# --------------------------------------------------------------------------- adapters

class LoRALinear(nn.Module):
    """A frozen Linear plus scale * B @ A (B starts at zero: the model starts as the stock one)."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float):
        super().__init__()
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.A = nn.Parameter(torch.empty(rank, base.in_features))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.B = nn.Parameter(torch.zeros(base.out_features, rank))
        self.scale = alpha / rank
        self.drop = nn.Dropout(dropout)

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (self.drop(x) @ self.A.t() @ self.B.t()) * self.scale


def add_adapters(encoder: nn.Module, decoder: nn.Module, rank: int, alpha: float, dropout: float) -> dict[str, LoRALinear]:
    """Wrap every target layer (assistant.asr.adapter.target_layers) in place; freeze everything else."""
    for p in list(encoder.parameters()) + list(decoder.parameters()):
        p.requires_grad_(False)
    wrapped = {}
    for name, layer in target_layers(encoder, decoder).items():
        prefix, _, i, attr = name.split(".")
        block = (encoder if prefix == "encoder" else decoder).blocks[int(i)]
        lora = LoRALinear(layer, rank, alpha, dropout)
        setattr(block, attr, lora)
        wrapped[name] = lora
    return wrapped


def adapter_state(wrapped: dict[str, LoRALinear]) -> dict:
    return {name: {"A": m.A.detach().clone(), "B": m.B.detach().clone()} for name, m in wrapped.items()}


def load_adapter_state(wrapped: dict[str, LoRALinear], state: dict) -> None:
    with torch.no_grad():
        for name, m in wrapped.items():
            m.A.copy_(state[name]["A"])
            m.B.copy_(state[name]["B"])


# --------------------------------------------------------------------------- data

class Batches:
    """Random training batches: commands (synthesized shards) and real speech, augmented per clip."""

    def __init__(self, opts: TrainOptions, tokenizer, features, rng: np.random.Generator):
        from assistant.training import augment as A
        from assistant.training import second_pass_data as D

        self.opts, self.tok, self.features, self.rng = opts, tokenizer, features, rng
        self.real = D.real_speech_items(opts.path(opts.data_dir), "train")
        self.commands: list[tuple[np.ndarray, str]] = []
        self.shards: set[Path] = set()
        self.refresh()
        artists, titles = D.training_names(opts.path(opts.data_dir), opts.path(opts.default_catalog))
        self.names = artists + titles
        self.name_set = {n.lower(): n for n in self.names}
        music = [A.synth_music_numpy(30.0, seed) for seed in range(6)]
        kitchen = opts.path(opts.data_dir) / "noise/kitchen.flac"
        self.bank = A.NoiseBank(kitchen=A.load_audio_16k(kitchen) if kitchen.is_file() else None, music=music)
        self.aug = A.AugmentConfig(clean_fraction=opts.clean_fraction, noise_prob=0.85,
                                   noise_snr_min_db=opts.noise_snr_min_db, noise_snr_max_db=opts.noise_snr_max_db,
                                   music_snr_min_db=max(0.0, opts.noise_snr_min_db), music_snr_max_db=opts.noise_snr_max_db,
                                   noise_weights=(0.45, 0.08, 0.12, 0.08, 0.27), gain_min_db=-12.0)
        self._real_cache: dict[str, np.ndarray] = {}

    def refresh(self) -> None:
        """Pick up shards the synthesizer wrote since."""
        from assistant.training.second_pass_data import read_shard
        from assistant.training.synth import is_reserved_speaker

        for path in sorted(self.opts.path(self.opts.commands_dir).glob("cmd-*.npz")):
            if path not in self.shards and not path.name.endswith(".tmp.npz"):
                self.shards.add(path)
                for audio, text, speaker in read_shard(path):
                    if is_reserved_speaker(speaker):
                        raise ValueError(f"{path}: a clip by reserved voice {speaker}; expected training voices only")
                    self.commands.append((audio, text))

    def _real_audio(self, path: str) -> np.ndarray:
        from assistant.training.second_pass_data import load_16k

        if path not in self._real_cache:
            if len(self._real_cache) > 3000:
                self._real_cache.clear()
            self._real_cache[path] = load_16k(path)
        return self._real_cache[path]

    def _names_in(self, text: str) -> list[str]:
        words = text.rstrip(".").split()
        found = []
        for n in range(5, 0, -1):
            for i in range(len(words) - n + 1):
                span = " ".join(words[i:i + n]).lower()
                if span in self.name_set and len(span) > 2:
                    found.append(self.name_set[span])
        return found

    def _prompt(self, text: str, is_command: bool) -> str:
        r = self.rng
        if r.random() >= (self.opts.prompt_prob if is_command else self.opts.real_prompt_prob):
            return ""
        k = int(r.integers(1, 4))
        names = [self.names[int(r.integers(0, len(self.names)))] for _ in range(k)]
        true = self._names_in(text) if is_command else []
        if true and r.random() < self.opts.prompt_true_prob:
            names[int(r.integers(0, k))] = true[int(r.integers(0, len(true)))]
        return ", ".join(names)

    def _edges(self, audio: np.ndarray) -> np.ndarray:
        n = int(self.opts.edge_max_s * 16000)
        before, after = int(self.rng.integers(0, n + 1)), int(self.rng.integers(0, n + 1))
        return np.concatenate([np.zeros(before, np.float32), audio, np.zeros(after, np.float32)])

    def next(self):
        """(mel (B, T, n_mels), tokens (B, L), labels (B, L)) of one batch."""
        from assistant.asr.second_pass import clip_features
        from assistant.training import augment as A

        r, opts = self.rng, self.opts
        clips, texts, prompts = [], [], []
        for _ in range(opts.batch_size):
            if self.commands and r.random() < opts.command_fraction:
                audio, text = self.commands[int(r.integers(0, len(self.commands)))]
                is_command = True
            else:
                item = self.real[int(r.integers(0, len(self.real)))]
                audio, text, is_command = self._real_audio(item.path), item.text, False
            spec = A.sample_augment(r, self.aug, len(self.bank.music), self.bank.kitchen is not None)
            clips.append(A.apply_augment(self._edges(audio), spec, self.bank).astype(np.float32))
            texts.append(text)
            prompts.append(self._prompt(text, is_command))
        longest = max(len(c) for c in clips)
        pad = opts.pad_ms * 16
        window = 30 * 16000
        mels = [clip_features(self.features, c, min(pad + longest - len(c), window - len(c))) for c in clips]
        mel = torch.stack(mels)
        seqs, labels = [], []
        for text, prompt in zip(texts, prompts):
            head = self.tok.prompt(prompt, max_prompt_tokens=100)
            target = self.tok.encode(" " + text)[:120] + [self.tok.eot]
            seqs.append(head + target[:-1])
            labels.append([-100] * (len(head) - 1) + target)
        width = max(len(s) for s in seqs)
        tokens = torch.full((len(seqs), width), self.tok.eot, dtype=torch.long)
        lab = torch.full((len(seqs), width), -100, dtype=torch.long)
        for i, (s, lbl) in enumerate(zip(seqs, labels)):
            tokens[i, :len(s)] = torch.tensor(s)
            lab[i, :len(lbl)] = torch.tensor(lbl)
        return mel, tokens, lab


# --------------------------------------------------------------------------- validation

def validation_sets(opts: TrainOptions) -> dict[str, list[tuple[np.ndarray, str]]]:
    """{"commands clean"/"commands 10 dB"/"commands 0 dB": clips of the spoken validation set, "speechocean762": ...}."""
    from assistant.training.second_pass_data import load_16k, real_speech_items
    from assistant.training.synth import is_reserved_speaker

    out: dict[str, list] = {}
    manifest = opts.path(opts.valid_manifest)
    if manifest.is_file():
        rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
        reserved = sorted({r.get("speaker", "") for r in rows if is_reserved_speaker(r.get("speaker", ""))})
        if reserved:  # choosing a model on them would tune on evaluation-only voices
            raise ValueError(f"{manifest}: validation clips by reserved voices {reserved}; expected training voices only")
        for label, snr in (("commands clean", None), ("commands 10 dB", 10.0), ("commands 0 dB", 0.0)):
            picked = [r for r in rows if r.get("snr_db") == snr][: opts.valid_clips_per_level]
            out[label] = [(load_16k(str(manifest.parent / r["audio"])), r["text"]) for r in picked]
    real = real_speech_items(opts.path(opts.data_dir), "valid")
    step = max(1, len(real) // max(1, opts.valid_real_clips))
    out["speechocean762"] = [(load_16k(i.path), i.text) for i in real[::step][: opts.valid_real_clips]]
    return out


def evaluate(encoder, decoder, tokenizer, features, decode_options, sets, pad_ms: int) -> dict[str, float]:
    """WER (%) of greedy decoding per set (normalized text), and their mean."""
    from assistant.asr.metrics import word_errors
    from assistant.asr.second_pass import clip_features
    from assistant.asr.text import normalize_text
    from assistant.asr.whisper_decoder import beam_decode

    encoder.eval()
    decoder.eval()
    out = {}
    with torch.inference_mode():
        for label, clips in sets.items():
            errors = words = 0
            for audio, ref in clips:
                mel = clip_features(features, audio, min(pad_ms * 16, 30 * 16000 - len(audio)))
                enc = encoder(mel[None])
                budget = min(decode_options.max_new_tokens, 6 + int(np.ceil(6 * len(audio) / 16000)))
                d = beam_decode(decoder, enc, tokenizer, tokenizer.prompt("", 0),
                                dataclasses.replace(decode_options, max_new_tokens=budget, beam_size=1))
                e, n = word_errors(normalize_text(ref), normalize_text(tokenizer.decode(d.tokens)))
                errors, words = errors + e, words + n
            out[label] = round(100 * errors / max(words, 1), 2)
    out["mean"] = round(float(np.mean([v for v in out.values()])), 2)
    return out


# --------------------------------------------------------------------------- the loop

def load_stock():
    """Stock Whisper tiny.en (fp32 encoder, decoder, tokenizer, features, decode options)."""
    from assistant.asr.second_pass import SecondPassOptions, WhisperSecondPass

    sp = WhisperSecondPass.load(SecondPassOptions(precision="fp32", beam_size=1, adapter=""))
    return sp.encoder, sp.decoder, sp.tokenizer, sp.features, sp.decode_options


def lr_at(step: int, opts: TrainOptions) -> float:
    if step < opts.warmup_steps:
        return opts.lr * (step + 1) / opts.warmup_steps
    progress = min(1.0, (step - opts.warmup_steps) / max(1, opts.total_steps - opts.warmup_steps))
    return opts.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _save(path: Path, blob: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)


def train(opts: TrainOptions, max_steps: int | None = None, log=print) -> Path:
    """Train (resuming from out_dir/last.pt when there); returns the checkpoint path."""
    torch.set_num_threads(opts.threads)
    out = opts.path(opts.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    encoder, decoder, tok, features, decode_options = load_stock()
    wrapped = add_adapters(encoder, decoder, opts.rank, opts.alpha, opts.dropout)
    params = [p for m in wrapped.values() for p in (m.A, m.B)]
    optim = torch.optim.AdamW(params, lr=opts.lr, weight_decay=opts.weight_decay)
    last, step, history, best = out / "last.pt", 0, [], None
    rng = np.random.default_rng([opts.seed, 0])
    if last.is_file():
        blob = torch.load(last, map_location="cpu", weights_only=False)
        load_adapter_state(wrapped, blob["adapter"])
        optim.load_state_dict(blob["optimizer"])
        step, history, best = blob["step"], blob["history"], blob.get("best")
        rng = np.random.default_rng([opts.seed, step])
        log(f"resumed at step {step}")
    batches = Batches(opts, tok, features, rng)
    sets = validation_sets(opts)
    bf16 = _cpu_bf16()
    if step == 0 and not history:
        base = evaluate(encoder, decoder, tok, features, decode_options, sets, opts.pad_ms)
        history.append({"step": 0, "valid": base})
        best = {"step": 0, "valid": base, "adapter": adapter_state(wrapped)}
        log(f"step 0 (stock) valid {base}")
    stop_at = opts.total_steps if max_steps is None else min(opts.total_steps, step + max_steps)
    t0, losses = time.perf_counter(), []
    while step < stop_at:
        encoder.train()
        decoder.train()
        if step % 100 == 0:
            batches.refresh()
        mel, tokens, labels = batches.next()
        for g in optim.param_groups:
            g["lr"] = lr_at(step, opts)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            enc = encoder(mel)
            hidden, _ = decoder.hidden(tokens, decoder.cross_keys(enc))
            scored = labels != -100  # the vocabulary projection only where a token is predicted
            logits = decoder.logits(hidden[scored])
        loss = F.cross_entropy(logits.float(), labels[scored])
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optim.step()
        step += 1
        losses.append(loss.item())
        if step % 10 == 0:
            log(f"step {step} loss {np.mean(losses[-10:]):.3f} lr {lr_at(step, opts):.2e} "
                f"{(time.perf_counter() - t0) / len(losses):.2f} s/step commands {len(batches.commands)}")
        record = None
        if step % opts.valid_every == 0 or step == stop_at:
            v = evaluate(encoder, decoder, tok, features, decode_options, sets, opts.pad_ms)
            record = {"step": step, "loss": round(float(np.mean(losses[-opts.valid_every:])), 4), "valid": v}
            history.append(record)
            log(f"step {step} valid {v}")
            if best is None or v["mean"] < best["valid"]["mean"]:
                best = {"step": step, "valid": v, "adapter": adapter_state(wrapped)}
        if step % opts.checkpoint_every == 0 or step == stop_at or record is not None:
            _save(last, {"adapter": adapter_state(wrapped), "optimizer": optim.state_dict(), "step": step,
                         "history": history, "best": best, "options": dataclasses.asdict(opts)})
    return last


def _cpu_bf16() -> bool:
    from assistant.asr.second_pass import cpu_has_bf16

    return cpu_has_bf16()


def export(opts: TrainOptions, dest: str | Path, which: str = "best") -> Path:
    """Write the `which` ("best" or "last") adapter of out_dir/last.pt as a shipped adapter file (fp16)."""
    blob = torch.load(opts.path(opts.out_dir) / "last.pt", map_location="cpu", weights_only=False)
    chosen = blob["best"] if which == "best" else {"step": blob["step"], "adapter": blob["adapter"],
                                                   "valid": blob["history"][-1]["valid"]}
    stock = blob["history"][0]["valid"]
    layers = {name: {"A": ab["A"].half(), "B": ab["B"].half()} for name, ab in chosen["adapter"].items()}
    shipped = {"format": ADAPTER_FORMAT, "base_model": "whisper-tiny.en", "rank": opts.rank, "alpha": opts.alpha,
               "layers": layers,
               "training": {"step": chosen["step"], "options": dataclasses.asdict(opts),
                            "data": "synthesized commands by training voices naming songs and artists not in the "
                                    "default catalog (spotify-millsong-sample, spotify-artist-genres), real speech "
                                    "(speechocean762 minus held-out speakers, LJ001, LibriSpeech train sample, wake "
                                    "words); noise: kitchen, coloured, synthetic music; input = utterance + pad_ms"},
               "validation": {"greedy_wer_percent": chosen["valid"], "stock_greedy_wer_percent": stock}}
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _save(dest, shipped)
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(REPO / "configs/train_second_pass.toml"))
    ap.add_argument("--steps", type=int, default=None, help="stop after this many more steps")
    ap.add_argument("--export", default=None, help="write the best adapter to this path and exit")
    ap.add_argument("--which", default="best", choices=("best", "last"))
    args = ap.parse_args(argv)
    opts = TrainOptions.from_toml(args.config)
    if args.export:
        print(export(opts, args.export, args.which))
        return 0
    train(opts, args.steps, log=lambda m: print(time.strftime("%H:%M:%S"), m, flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
