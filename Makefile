# The README's two commands: `make demo` (the main job on the lab farm) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv test unit lab lab-down demo bench

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# Every test, integration included: needs the lab (`make lab`).
test: venv
	$(BIN)/pytest -q

# Fast tests, no Docker.
unit: venv
	$(BIN)/pytest -q tests/unit

# The lab farm on this machine (docs/lab.md): install what is missing, then start it.
lab:
	sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; $$sudo lab/lab.sh install && $$sudo lab/lab.sh up

lab-down:
	sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; $$sudo lab/lab.sh down

# The main job on the lab farm. For now the book's exercise with the plain docker CLI.
demo:
	lab/book-exercise.sh
