# Two commands: `make demo` and `make test`. Both create .venv from the pinned requirements first.
VENV ?= .venv
PYTHON ?= python3
ZK := ZHIKU_HOME=$(CURDIR)/.zhiku-demo $(VENV)/bin/zhiku
STAMP := $(VENV)/.installed

.PHONY: demo test lint install lock bench clean

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

test: $(STAMP)
	$(VENV)/bin/pytest

# Lint and types are part of green: .ci/run runs this before the tests.
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

# Re-pin after changing dependencies in pyproject.toml or requirements.in.
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install -q torch==2.13.0 && .lockenv/bin/pip install -q -r requirements.in
	.lockenv/bin/pip freeze --exclude-editable | sort > requirements.lock
	rm -rf .lockenv

clean:
	rm -rf $(VENV) .zhiku-demo .pytest_cache
