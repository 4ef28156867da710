# Two commands: `make demo` and `make test`. Both create .venv from the pinned requirements first.
VENV ?= .venv
PYTHON ?= python3
ZK := ZHIKU_HOME=$(CURDIR)/.zhiku-demo $(VENV)/bin/zhiku
STAMP := $(VENV)/.installed

MILVUS_VENV := .milvus-venv
MILVUS_STAMP := $(MILVUS_VENV)/.installed

.PHONY: demo test test-all lint install lock bench clean milvus-server

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.lock
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

demo: $(STAMP)
	$(ZK) ingest examples/sample --kb demo
	$(ZK) status --kb demo
	$(ZK) search "混合检索 融合" --kb demo -k 3
	@while IFS= read -r q; do echo; echo "── $$q"; $(ZK) ask "$$q" --kb demo || exit 1; done < examples/questions.txt

# One pytest worker per core (pytest-xdist); a file's tests stay on one worker, so module fixtures
# (a built KB, a browser, a server) are made once; at most 4 workers (each loads torch and the
# models). `pytest` alone runs them in one process.
test: $(STAMP)
	$(VENV)/bin/pytest -n auto --maxprocesses 4 --dist loadfile

# Every test, the slow ones too (a wheel build, a Milvus server, a browser): what .ci/run runs.
test-all: $(STAMP)
	$(VENV)/bin/pytest -n auto --maxprocesses 4 --dist loadfile -m "" --durations=25

# Lint and types are part of green: .ci/run runs this before the tests. lint-imports checks the
# layers of CONTRIBUTING.md ([tool.importlinter] in pyproject.toml): a reach-in past the facade fails.
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# A real Milvus standalone server for the tests (ZHIKU_MILVUS_SERVER=1 runs them; .ci/run does).
# Its own venv: PyPI's `milvus` only bundles the server binary, and its optional client extra pins
# an old pymilvus that clashes with ours. The binary is unpacked once here (≈ 250 MB).
milvus-server: $(MILVUS_STAMP)

$(MILVUS_STAMP):
	$(PYTHON) -m venv $(MILVUS_VENV)
	$(MILVUS_VENV)/bin/pip install -q --disable-pip-version-check milvus==2.3.5
	$(MILVUS_VENV)/bin/python -c "import milvus; milvus._initialize_data_files('$(MILVUS_VENV)/milvus-server')"
	@touch $@

# Re-pin after changing dependencies in pyproject.toml or requirements.in.
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install -q torch==2.13.0 && .lockenv/bin/pip install -q -r requirements.in
	.lockenv/bin/pip freeze --exclude-editable | sort > requirements.lock
	rm -rf .lockenv

clean:
	rm -rf $(VENV) $(MILVUS_VENV) .zhiku-demo .pytest_cache
