# Development tasks. Each target creates .venv and installs what it needs.
# torch is pinned to the CPU build this project develops against; the package
# itself accepts any torch>=2.1.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.qtrace-installed
TORCH_PIN := torch==2.13.0
# Real-world encoders for tests/test_real_world.py, built from tiny configs
# (no weights are downloaded). Pinned: the tests name its modules and lines.
TRANSFORMERS_PIN := transformers==5.25.0

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH_PIN)
	$(BIN)/python -m pip install --quiet -e '.[dev]' $(TRANSFORMERS_PIN)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/qtrace show sample_models.resnet:TinyResNet
	@echo
	@echo '$$ qtrace show sample_models.gated:GatedNet --section summary'
	-@$(BIN)/qtrace show sample_models.gated:GatedNet --section summary
	@echo
	$(BIN)/qtrace show sample_models.gated:GatedNet --skip-name stages.1.gate \
		--section leaves --scope stages.1

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

# Whole-command timings against the bare tracer + print_tabular (which needs
# tabulate); prints a table and writes benchmarks/results.json.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet tabulate
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
