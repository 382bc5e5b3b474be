"""The learned parts of the parser: a CRF slot tagger and a linear intent classifier.

Files of one model folder (the shipped one is `assistant/nlu/model/`, about
2 MB; `assistant nlu train` rebuilds it):

    slots.crfsuite   CRFsuite model: BIO tags over the slot names (python-crfsuite)
    intents.npz      feature names, weights [features x intents], biases, intent names
    meta.json        format version, temperature, training data counts
    common_words.txt words the training data uses often and almost never inside a name
                     ("next", "save", "favorite"): the parser does not look a run of them
                     up in the catalog unless it is a name exactly (optional; absent: none)

The classifier is multinomial logistic regression trained with scikit-learn;
inference is a sum of weight rows in numpy (no scikit-learn at run time).
Its probabilities are divided by a temperature fitted by cross-validation so
that "0.8" means right about 80 % of the time.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.errors import AssistantError

FORMAT_VERSION = 1
SHIPPED_MODEL_DIR = Path(__file__).resolve().parent / "model"
SLOTS_FILE = "slots.crfsuite"
INTENTS_FILE = "intents.npz"
META_FILE = "meta.json"
COMMON_WORDS_FILE = "common_words.txt"


@dataclass(frozen=True)
class CrfOptions:
    """CRFsuite L-BFGS training (elastic net). c1 = 0.2 was chosen on a held-out fold of HWU64 train +
    SLURP devel (bench/nlu_select.py): slot F1 as good as 0.05 or better, half the model size."""

    c1: float = 0.2
    c2: float = 0.02
    max_iterations: int = 120


class SlotTagger:
    """BIO tags for a token sequence; thread-safe (one lock around the CRFsuite tagger)."""

    def __init__(self, path: Path):
        import pycrfsuite

        self._tagger = pycrfsuite.Tagger()
        try:
            self._tagger.open(str(path))
        except Exception as exc:  # noqa: BLE001 - CRFsuite raises plain ValueErrors/IOErrors
            raise AssistantError(f"slot model {path}: cannot be read ({exc}); rebuild it with `assistant nlu train`") from exc
        self._lock = threading.Lock()
        self.labels = tuple(self._tagger.labels())

    def tag(self, features: list[list[str]]) -> tuple[list[str], float]:
        """(tags, probability of the whole tag sequence)."""
        if not features:
            return [], 1.0
        with self._lock:
            tags = self._tagger.tag(features)
            prob = self._tagger.probability(tags)
        return list(tags), float(prob)

    @staticmethod
    def train(xs: list[list[list[str]]], ys: list[list[str]], path: Path, options: CrfOptions = CrfOptions()) -> None:
        import pycrfsuite

        trainer = pycrfsuite.Trainer(verbose=False)
        for x, y in zip(xs, ys):
            trainer.append(x, y)
        trainer.set_params({"c1": options.c1, "c2": options.c2, "max_iterations": options.max_iterations,
                            "feature.possible_transitions": True})
        path.parent.mkdir(parents=True, exist_ok=True)
        trainer.train(str(path))


class IntentClassifier:
    """Multinomial logistic regression over sparse string features, numpy inference."""

    def __init__(self, features: list[str], weights: np.ndarray, bias: np.ndarray, intents: list[str],
                 temperature: float = 1.0):
        self.index = {f: i for i, f in enumerate(features)}
        self.weights = weights.astype(np.float32)
        self.bias = bias.astype(np.float32)
        self.intents = list(intents)
        self.temperature = float(temperature)

    def logits(self, features: list[str]) -> np.ndarray:
        rows = [self.index[f] for f in features if f in self.index]
        out = self.bias.copy()
        if rows:
            out += self.weights[rows].sum(axis=0)
        return out

    def probabilities(self, features: list[str], temperature: float | None = None) -> np.ndarray:
        z = self.logits(features) / (self.temperature if temperature is None else temperature)
        z = np.exp(z - z.max())
        return z / z.sum()

    @classmethod
    def fit(cls, xs: list[list[str]], ys: list[str], c: float = 4.0, min_count: int = 2,
            weights: dict[str, float] | None = None) -> "IntentClassifier":
        """Fit on feature lists; features seen fewer than `min_count` times are dropped;
        `weights`: intent -> sample weight (default 1)."""
        from collections import Counter

        from scipy.sparse import csr_matrix
        from sklearn.linear_model import LogisticRegression

        counts = Counter(f for x in xs for f in set(x))
        names = sorted(f for f, n in counts.items() if n >= min_count)
        index = {f: i for i, f in enumerate(names)}
        data, indices, indptr = [], [], [0]
        for x in xs:
            row = Counter(index[f] for f in x if f in index)
            indices.extend(row)
            data.extend(float(v) for v in row.values())
            indptr.append(len(indices))
        matrix = csr_matrix((data, indices, indptr), shape=(len(xs), len(names)), dtype=np.float64)
        model = LogisticRegression(C=c, max_iter=2000)
        model.fit(matrix, ys, sample_weight=np.array([(weights or {}).get(y, 1.0) for y in ys]))
        intents = [str(k) for k in model.classes_]
        coef, intercept = model.coef_, model.intercept_
        if len(intents) == 2:  # binary: sklearn keeps one row; make it two logits
            coef = np.vstack([-coef[0] / 2, coef[0] / 2])
            intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
        return cls(names, coef.T, intercept, intents)

    def save(self, path: Path) -> None:
        names = sorted(self.index, key=self.index.get)
        np.savez_compressed(path, features=np.array(names), weights=self.weights.astype(np.float16),
                            bias=self.bias, intents=np.array(self.intents))

    @classmethod
    def load(cls, path: Path, temperature: float = 1.0) -> "IntentClassifier":
        try:
            with np.load(path, allow_pickle=False) as d:
                return cls([str(f) for f in d["features"]], d["weights"].astype(np.float32), d["bias"],
                           [str(i) for i in d["intents"]], temperature)
        except (OSError, KeyError, ValueError) as exc:
            raise AssistantError(f"intent model {path}: cannot be read ({exc}); rebuild it with `assistant nlu train`") from exc


@dataclass
class NluModel:
    tagger: SlotTagger
    classifier: IntentClassifier
    meta: dict
    common_words: frozenset[str] = frozenset()

    @classmethod
    def load(cls, folder: str | Path | None = None) -> "NluModel":
        folder = Path(folder) if folder else SHIPPED_MODEL_DIR
        meta_path = folder / META_FILE
        if not meta_path.is_file():
            raise AssistantError(f"NLU model folder {folder}: no {META_FILE}; expected a folder written by "
                                 "`assistant nlu train`")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT_VERSION:
            raise AssistantError(f"NLU model {folder}: format {meta.get('format')!r}, expected {FORMAT_VERSION}; "
                                 "rebuild it with `assistant nlu train`")
        common = folder / COMMON_WORDS_FILE
        words = frozenset(common.read_text(encoding="utf-8").split()) if common.is_file() else frozenset()
        return cls(SlotTagger(folder / SLOTS_FILE),
                   IntentClassifier.load(folder / INTENTS_FILE, meta.get("temperature", 1.0)), meta, words)
