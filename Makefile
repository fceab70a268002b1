# reprlab: `make demo` and `make test` each do all the set-up they need.
PY      := .venv/bin/python
PIP     := .venv/bin/pip
STAMP   := .venv/.reprlab-installed
TORCH   := torch==2.14.1 torchvision==0.29.1
FMNIST  := /usr/share/datasets/fashion-mnist
PRESET  ?= quick
THREADS ?= 0

.PHONY: all setup data lint test demo bench clean help

help:
	@echo "make test   set up .venv and the data, check the import layers and ruff (make lint), run the test suite"
	@echo "make demo   set up, run every study on its quick preset, write reports/index.html"
	@echo "            (THREADS=1 make demo on a machine busy with other work)"
	@echo "make bench  set up, run the speed benchmarks (ratios against peers and the hardware)"

setup: $(STAMP) data

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e '.[test]' $(TORCH)
	touch $(STAMP)

# Debian's dataset-fashion-mnist, when it is missing and we are allowed to install it.
# Without it everything still works on scikit-learn's digits; the studies say so.
data:
	@if [ ! -d $(FMNIST) ] && [ -z "$$REPRLAB_DATA" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) || echo "warning: could not install dataset-fashion-mnist"; \
	  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
	    (sudo apt-get update -qq && sudo apt-get install -y -qq dataset-fashion-mnist) || echo "warning: could not install dataset-fashion-mnist"; \
	  else echo "warning: $(FMNIST) missing and apt-get not available; see 'reprlab datasets'"; fi; \
	fi
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium) || echo "warning: chromium not installed; the report browser test will be skipped"; \
	fi

# the import layers (the contracts in pyproject.toml), then ruff: lint and format
lint: setup
	.venv/bin/lint-imports --no-cache --no-logo
	.venv/bin/ruff check src tests benchmarks
	.venv/bin/ruff format --check src tests benchmarks

test: lint
	$(PY) -m pytest -n 2 --dist loadfile tests

demo: setup
	.venv/bin/reprlab study all --preset $(PRESET) --out reports --threads $(THREADS)
	.venv/bin/reprlab report --in reports
	@echo "report: reports/index.html"

bench: setup
	$(PY) benchmarks/run_all.py

clean:
	rm -rf .venv reports runs .cache
