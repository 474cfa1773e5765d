# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_CONFIG ?= configs/Shapes/mask_rcnn_R_18_FPN_demo.yaml
DEMO_OUTPUT ?= output/demo
DEMO_DATASET ?= shapes_val

.PHONY: setup test test-fast fuzz lint demo clean

setup: $(STAMP)

$(STAMP): requirements.lock requirements-nodeps.lock setup.py
	test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements.lock
	$(PYTHON) -m pip install --quiet --no-deps -r requirements-nodeps.lock
	$(PYTHON) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Everything (what CI runs); Hypothesis runs its derandomized "ci" profile (conftest.py).
test: setup
	$(PYTHON) -m pytest -q

# The developer loop: every test not marked slow (no subprocess / end-to-end training).
test-fast: setup
	$(PYTHON) -m pytest -q -m "not slow"

# Property tests with fresh random examples (Hypothesis "explore" profile), FUZZ_ROUNDS times.
FUZZ_ROUNDS ?= 5
fuzz: setup
	for i in $$(seq $(FUZZ_ROUNDS)); do HYPOTHESIS_PROFILE=explore $(PYTHON) -m pytest -q tests/robustness tests/data/test_coco_loader.py || exit 1; done

# ruff (pinned in requirements.lock, configured in pyproject.toml) over the whole tree, then the import
# contracts of the library's layers (import-linter, configured in pyproject.toml; README, Layout).
lint: setup
	$(PYTHON) -m ruff check .
	$(VENV)/bin/lint-imports --no-cache

demo: setup
	$(PYTHON) tools/train_net.py --config-file $(DEMO_CONFIG) OUTPUT_DIR $(DEMO_OUTPUT)
	$(PYTHON) tools/visualize.py --predictions $(DEMO_OUTPUT)/inference/$(DEMO_DATASET) --output-dir $(DEMO_OUTPUT)/vis --num 24
	$(PYTHON) tools/plot_metrics.py $(DEMO_OUTPUT)
	@echo "Demo done: metrics in $(DEMO_OUTPUT)/metrics.json, plot $(DEMO_OUTPUT)/metrics.png, GT | prediction images in $(DEMO_OUTPUT)/vis/"

clean:
	rm -rf $(VENV) build *.egg-info
