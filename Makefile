# hpsearch: make install | make demo | make test | make test-fast | make lint
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Without a GPU take the CPU build of torch (a plain `torch` pulls a multi-GB CUDA build);
# with one (nvidia-smi answers) take PyPI's default CUDA build. Override: make install TORCH=...
TORCH ?= $(shell if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then echo torch; else echo torch==2.13.0; fi)

.PHONY: install demo test test-fast lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev]"

# `make test` and `make lint` on a fresh clone install first.
$(BIN)/pytest:
	$(MAKE) install

# The quickstart sweep: MiniLM on the bundled support-intent data, offline, a few minutes on 2 cores.
demo: install
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/hpsearch run studies/quickstart.yaml
	$(BIN)/hpsearch status studies/quickstart.yaml
	$(BIN)/hpsearch export studies/quickstart.yaml

# Two pytest-xdist workers, one per core of CI's machine (docs/testing.md): serial, the suite keeps one
# core idle while a test waits on its subprocesses. --dist loadgroup hands out tests one at a time,
# except that a module marked with an xdist_group (one whose tests share a module-scoped sweep) goes to
# one worker whole. Each worker starts its own session
# fixtures (PostgreSQL, the tiny models) on free ports in temp folders. One torch thread per test process:
# two workers with a thread per core each would oversubscribe the cores (the workers `hpsearch run --workers`
# starts set their own share). `make test XDIST=` runs serially.
XDIST ?= -n 2 --dist loadgroup
TEST_ENV := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

# Every tier (CI runs this). Each test has a timeout (pyproject.toml): a hang fails with its name.
test: $(BIN)/pytest
	$(TEST_ENV) $(BIN)/python -m pytest tests $(XDIST) --durations=15

# Unit tests and the smallest sweeps, about 2 minutes on 2 cores: the tiers are markers in pyproject.toml.
FAST := not slow and not postgres and not browser and not slurm
test-fast: $(BIN)/pytest
	$(TEST_ENV) $(BIN)/python -m pytest tests -m "$(FAST)" $(XDIST) --durations=10

lint: $(BIN)/pytest
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The manual (docs/, mkdocs.yml) into site/; --strict fails on a broken link, anchor or a page left out of the nav.
.PHONY: docs
$(BIN)/mkdocs:
	$(MAKE) install
docs: $(BIN)/mkdocs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf studies/*.db studies/*.best
