# make demo | make test | make bench: each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Machines of this kind keep PyTorch's CPU wheel in /opt/wheels; the `all` extra pins its version,
# so pip takes it instead of PyPI's CUDA build (several GB).
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels)

.PHONY: demo test bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The demo needs only the core; tests and benchmarks install every extra ("all").
$(VENV)/.installed-core: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-all: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet $(FIND_LINKS) -e '.[all]'
	touch $@ $(VENV)/.installed-core

install: $(VENV)/.installed-all

demo: $(VENV)/.installed-core
	$(BIN)/semsearch build abcnews-sample -o sample.semsearch
	$(BIN)/semsearch search sample.semsearch "confronting global challenges"
	$(BIN)/semsearch search sample.semsearch "desafíos globales"

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/serve_load.py
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/hybrid.py
	$(BIN)/python benchmarks/updates.py
	$(BIN)/python benchmarks/encoders.py

clean:
	rm -rf $(VENV) sample.semsearch
