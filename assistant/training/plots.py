"""PNG curves of a training run: loss and error rates per epoch (like the seed's figures)."""

from __future__ import annotations

import csv
from pathlib import Path


def plot_metrics(metrics_csv: Path, out_png: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with Path(metrics_csv).open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    epochs = [float(r["epoch"]) for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epochs, [float(r["train_loss"]) for r in rows], "o-", label="train loss")
    ax1.plot(epochs, [float(r["valid_loss"]) for r in rows], "s-", label="validation loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("CTC loss")
    ax1.legend()
    ax1.grid(alpha=0.3)
    ax2.plot(epochs, [float(r["valid_cer"]) for r in rows], "o-", label="validation CER")
    ax2.plot(epochs, [float(r["valid_wer"]) for r in rows], "s-", label="validation WER")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("error rate")
    ax2.set_ylim(bottom=0)
    ax2.legend()
    ax2.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
