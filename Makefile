# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_CONFIG ?= configs/Shapes/demo.yaml
DEMO_OUTPUT ?= output/demo

.PHONY: setup test demo clean

setup: $(STAMP)

$(STAMP): requirements.lock setup.py
	test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements.lock
	$(PYTHON) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

test: setup
	$(PYTHON) -m pytest -q

demo: setup
	$(PYTHON) tools/train_net.py --config-file $(DEMO_CONFIG) OUTPUT_DIR $(DEMO_OUTPUT)

clean:
	rm -rf $(VENV) build *.egg-info
