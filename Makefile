# RefineryIQ Edge — the two set-up commands: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-long bench lint clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# setuptools warns on every editable install that a folder named like a package shadows it:
	@# that is how this repository is laid out, so that one notice is silenced.
	PYTHONWARNINGS='ignore:Editable installation' $(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Run the gateway with the bundled simulator and the embedded store (no database or broker).
run: $(STAMP)
	$(BIN)/refineryiq run --simulate

## Run the whole test suite (starts/installs PostgreSQL and Mosquitto when needed).
test: $(STAMP)
	bash scripts/test.sh

## Long fault and soak runs.
test-long: $(STAMP)
	bash scripts/test.sh --long

## Benchmarks (results in bench/results/).
bench: $(STAMP)
	$(BIN)/python bench/run_all.py

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) state .pytest_cache
