# dgmbench: the two commands a newcomer runs are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test setup lint bench bench-gpu clean chromium

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

## demo: set up, then run the main job on the embedded digits dataset
demo: $(STAMP)
	$(PY) -m dgmbench.demo

## test: set up, then run the whole test suite (offline, CPU)
test: $(STAMP) chromium
	$(PY) -m pytest -q tests

## chromium: headless browser for the report test (Debian package; installed when missing)
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  echo "warning: could not install chromium; the report browser test will fail in CI"


lint: $(STAMP)
	$(VENV)/bin/ruff check dgmbench baselines tests benchmarks

bench: $(STAMP)
	$(PY) -m pytest benchmarks --benchmark-only

## bench-gpu: every GPU figure of benchmarks/RESULTS.md into bench-gpu/ (summary.md, JSON, logs)
bench-gpu: $(STAMP)
	PYTHON=$(PY) bash benchmarks/gpu_suite.sh all bench-gpu

clean:
	rm -rf $(VENV) build *.egg-info
