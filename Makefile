# Two commands for a newcomer: `make run` and `make test`. Both set everything up first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint unit e2e fuzz bench compare eval takeover-loop clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The benchmark's peer (evaluation/quix_peer.py) in an environment of its own: Quix's dependencies
# (confluent-kafka, rocksdict, its pydantic) must not change the worker's. Pinned, so runs compare.
QUIX := var/quix-venv/bin/python
$(QUIX):
	$(PYTHON) -m venv var/quix-venv
	$(QUIX) -m pip install --quiet 'quixstreams==3.28.1'

## Embedded broker + worker + simulated traffic with a spike; alerts in the terminal (Ctrl-C stops all).
run: $(STAMP)
	$(BIN)/spendwatch run --simulate

## Lint and type checks, then every test: unit, doctests, and end-to-end against the embedded broker.
## Most tests wait on a broker or a worker far more than they compute, so they run on PYTEST_WORKERS
## processes (each with its own embedded broker); the few that time a stop or a latency run alone after.
PYTEST_WORKERS ?= 5
test: lint
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || echo "make test: no chromium or \
	chromedriver, so the browser test will be skipped (apt-get install chromium chromium-driver)"
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal -m "not serial"
	$(BIN)/python -m pytest -m serial

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m "not e2e"

e2e: $(STAMP)
	$(BIN)/python -m pytest -m e2e

## Every input boundary fuzzed with 100,000 fresh examples each (make test runs 150, derandomized): about
## 5 ms an example on one core (10,000 each: 8m40s), so a long run; FUZZ_EXAMPLES=10000 for a shorter one.
FUZZ_EXAMPLES ?= 100000
fuzz: $(STAMP)
	SPENDWATCH_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -p no:cacheprovider -q tests/fuzz

## Throughput, alert latency and memory, side by side on the embedded broker (docs/benchmarks.md).
bench: $(STAMP) $(QUIX)
	$(BIN)/python -m evaluation.bench

## This tree against another version, side by side in one run: make compare REV=<commit>.
compare: $(STAMP)
	$(BIN)/python -m evaluation.compare $(REV)

## Detection quality over labelled synthetic days and the Azure LLM traces (docs/detection.md).
eval: $(STAMP)
	$(BIN)/python -m evaluation.run

## The takeover tests 20 times in a row beside a CPU hog (not in CI: about half an hour).
takeover-loop: $(STAMP)
	$(BIN)/python -m evaluation.takeover_loop

clean:
	rm -rf $(VENV) var .pytest_cache
