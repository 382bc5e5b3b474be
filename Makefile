# The two commands the README documents: `make run` and `make test`.
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test setup corpus train train-gru train-second-pass bench clean

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $@

setup: $(STAMP)

run: $(STAMP)
	$(PY) -m assistant serve

test: $(STAMP)
	$(PY) -m pytest -q

corpus: $(STAMP)
	bash scripts/setup.sh --synth
	$(PY) -m assistant synth --config configs/corpus.toml
	$(PY) -m assistant synth --config configs/corpus_v2.toml

# The shipped recognizer: Whisper tiny.en's encoder fine-tuned with CTC (exports models/asr.pt).
train: $(STAMP)
	$(PY) -m assistant train --config configs/train_whisper.toml

# The seed's from-scratch CNN + ResNet + GRU family, in the three phases it was first trained in.
# The second pass's adapters (models/second_pass_adapter.pt): commands synthesized, then LoRA fine-tuning that resumes
# from runs/second_pass_ft/last.pt, then the best checkpoint exported.
train-second-pass: $(STAMP)
	bash scripts/setup.sh --synth
	$(PY) -m assistant.training.second_pass_data
	$(PY) -m assistant.training.second_pass_train --config configs/train_second_pass.toml
	$(PY) -m assistant.training.second_pass_train --config configs/train_second_pass.toml --export models/second_pass_adapter.pt

train-gru: $(STAMP)
	$(PY) -m assistant train --config configs/train.toml
	cp runs/asr/best.pt runs/asr/phase1_epoch2.pt
	$(PY) -m assistant train --config configs/train_phase2.toml
	cp runs/asr2/best.pt runs/asr2/phase2_final.pt
	$(PY) -m assistant train --config configs/train_phase3.toml

bench: $(STAMP)
	bash scripts/setup.sh --bench

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
