# Multi-instance Socket.IO deployment kit. `make` alone lists the targets.

# Settings come from, strongest first: the command line (make up INSTANCES=5),
# the environment, .env (see .env.example), then the defaults below. .env is
# read by scripts/dotenv.py, the reader compose/run-compose uses too, into a
# generated file of `NAME ?= value` lines.
ifneq (,$(wildcard .env))
include .run/env.mk
.run/env.mk: .env scripts/dotenv.py
	@mkdir -p .run
	@$(PYTHON) scripts/dotenv.py .env --make >$@
endif

# INSTANCES, HTTP_PORT and PAGE_PORT default to socketio_kit/config/settings.py's defaults.
include .run/defaults.mk
.run/defaults.mk: socketio_kit/config/settings.py scripts/dotenv.py
	@mkdir -p .run
	@$(PYTHON) -m socketio_kit.config --defaults >.run/defaults.env
	@$(PYTHON) scripts/dotenv.py .run/defaults.env --make >$@
MODE ?= auto
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
COMPOSE ?= docker compose
COMPOSE_PROJECT ?= socketio-kit
SERVICE ?=
INSTANCE ?= app2
REQUIRE_COMPOSE ?=
# Docker Swarm (make swarm-up): its own stack name and port, so it runs next
# to the compose cluster. SWARM_NODES > 1 spreads instances over nodes
# labelled socketio-kit.slot=1..N (README, "Beyond one machine").
SWARM_STACK ?= socketio-kit-swarm
SWARM_HTTP_PORT ?= 8090
SWARM_NODES ?= 1
SWARM_TEST_STACK ?= socketio-kit-swarm-test
K8S_OVERLAY ?= production
REQUIRE_SWARM ?= $(REQUIRE_COMPOSE)
SCENARIO ?= broadcast
CLIENTS ?= 50
# localhost, like the page's origin: the two are then the same site, so the
# SameSite=Lax session cookie travels with the handshake.
URL ?= http://localhost:$(HTTP_PORT)
ORIGIN ?= http://localhost:$(PAGE_PORT)
PYTEST_ARGS ?=
# Compose images: empty = official images if they can be pulled, else offline.
OFFLINE ?=
# make up PROFILE=observability: Prometheus and the nginx exporter too (compose).
PROFILE ?=
RUN_COMPOSE := compose/run-compose
DOCTOR_ARGS ?=
LOADTEST_ARGS ?=
CERT_NAMES ?=
BENCH_ARGS ?=
PAGE_DEPS := page/node_modules/.package-lock.json
# Shell test: a Docker engine answers and this project has containers.
COMPOSE_RUNNING = docker info >/dev/null 2>&1 && [ -n "$$(docker ps -aq --filter label=com.docker.compose.project=$(COMPOSE_PROJECT))" ]

export INSTANCES HTTP_PORT PAGE_PORT OFFLINE COMPOSE PYTHON PROFILE
# The application the instances serve (README, "Your own application").
export APP APP_PATH
export SWARM_STACK SWARM_HTTP_PORT SWARM_NODES
export COMPOSE_PROJECT_NAME := $(COMPOSE_PROJECT)

.DEFAULT_GOAL := help

##@ General

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m [VAR=value ...]\n"} \
	/^[a-zA-Z0-9_-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
	/^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Setup

.PHONY: deps install
deps: ## Install nginx, redis-server and strace (Debian packages) if missing
	@missing=""; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v strace >/dev/null 2>&1 || missing="$$missing strace"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

install: $(VENV)/.installed ## Create the virtualenv with the app and test requirements

.PHONY: lock
lock: install ## Re-lock requirements.txt and requirements-dev.txt (with hashes) from their .in files
	$(PY) -m uv pip compile --universal --python-version 3.11 --generate-hashes -q \
		-o requirements.txt requirements.in
	$(PY) -m uv pip compile --universal --python-version 3.11 --generate-hashes -q \
		-o requirements-dev.txt requirements-dev.in

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $@

##@ Cluster

.PHONY: up down ps logs restart build images-offline
up: install page-deps ## Start the cluster: compose if a Docker engine answers, else native (MODE=compose|local forces one; PROFILE=observability adds Prometheus)
	@case "$(MODE)" in \
	auto) if docker info >/dev/null 2>&1; then mode=compose; \
	      else echo "up: no Docker engine answers, so starting the native cluster instead (make local)."; mode=local; fi ;; \
	compose|local) mode="$(MODE)" ;; \
	*) echo "up: MODE=$(MODE) is not auto, compose or local; set MODE to one of them." >&2; exit 2 ;; \
	esac; \
	if [ $$mode = local ] && [ -n "$(PROFILE)" ]; then \
		echo "up: PROFILE=$(PROFILE) needs compose (Prometheus runs in a container); the native cluster serves each instance's /metrics on METRICS_BASE_PORT+i."; fi; \
	if [ $$mode = compose ]; then compose/up; else $(MAKE) --no-print-directory local; fi

down: install ## Stop whichever cluster runs (compose: containers, networks and volumes)
	@if $(COMPOSE_RUNNING); then $(RUN_COMPOSE) down -v --remove-orphans; fi
	@$(PY) -m native down

ps: install ## Show the compose services (or the native processes) and their health
	@if $(COMPOSE_RUNNING); then $(RUN_COMPOSE) ps; else PATH="$$PATH:/usr/sbin" $(PY) -m native ps; fi

logs: ## Follow the compose logs (SERVICE=app2 for one service)
	$(RUN_COMPOSE) logs -f --tail=200 $(SERVICE)

restart: ## Restart a compose service (SERVICE=app2), or all of them
	$(RUN_COMPOSE) restart $(SERVICE)

build: ## Build the app image (OFFLINE=1: from the offline images and wheelhouse); with APP_PATH, the application's image FROM it
	@if [ "$(OFFLINE)" = 1 ]; then compose/images-offline.sh; fi
	$(RUN_COMPOSE) build
	@if [ -n "$(APP_PATH)" ]; then $(PYTHON) compose/app_image.py --app-path "$(APP_PATH)" --app "$(APP)" --kit-image "$$APP_IMAGE"; fi

images-offline: ## Build base, python, nginx and redis images and a wheelhouse with no registry
	compose/images-offline.sh

##@ Docker Swarm

.PHONY: swarm-up swarm-down swarm-ps swarm-roll swarm-token
# Tokens for the stack, signed with the secret its instances verify with.
SWARM_MINT = JWT_SECRET_FILE="$$($(PY) compose/swarm.py --secret-path jwt_secret)" JWT_SECRET= $(PY) -m socketio_kit.mint
swarm-up: install ## Deploy the stack on this engine's swarm (inits a single-node one if none; SWARM_HTTP_PORT, SWARM_STACK)
	@compose/swarm-up

swarm-down: ## Remove the stack and wait until nothing of it is left (and leaves the swarm if swarm-up created it)
	@compose/swarm-down

swarm-ps: ## Show the stack's tasks
	@docker stack ps --format 'table {{.Name}}\t{{.CurrentState}}\t{{.Error}}' $(SWARM_STACK)

swarm-roll: ## Rolling update: restart the instances one by one, each draining first (SWARM_APP_IMAGE=new image)
	@compose/swarm-roll

swarm-token: install ## Mint a token for the stack (it runs AUTH_MODE=jwt): TOKEN_SUB=, TOKEN_ROOMS='lobby,team-*' (default every room), TOKEN_ROLES=admin, TOKEN_TTL=
	@$(SWARM_MINT) --sub "$(or $(TOKEN_SUB),someone)" --rooms "$(or $(TOKEN_ROOMS),*)" \
		--roles "$(TOKEN_ROLES)" --ttl "$(or $(TOKEN_TTL),3600)"

##@ Kubernetes (manifests; no cluster runs here)

.PHONY: k8s-deps k8s-nginx k8s-build
k8s-deps: ## Install kubectl (Debian's kubernetes-client) and dnsmasq if missing
	@missing=""; \
	command -v kubectl >/dev/null 2>&1 || missing="$$missing kubernetes-client"; \
	command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || missing="$$missing dnsmasq-base"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

k8s-nginx: install ## Re-render deploy/k8s/base/nginx.conf from nginx/nginx.conf.template
	$(PY) -m nginx.k8s

k8s-build: k8s-deps ## Print the manifests of an overlay (K8S_OVERLAY=base|production)
	@kubectl kustomize deploy/k8s/$(if $(filter base,$(K8S_OVERLAY)),base,overlays/$(K8S_OVERLAY))

##@ TLS

.PHONY: certs
certs: ## Make a local CA and a server certificate in certs/ for TLS=on (CERT_NAMES=host,ip adds names)
	@bash scripts/certs.sh certs "$(CERT_NAMES)"

##@ Native cluster (no Docker)

.PHONY: local local-down local-ps local-stop local-start rolling-restart
local: deps install page-deps ## Start redis, INSTANCES gunicorn instances and nginx as local processes (APP_PATH: its requirements.txt into the venv first)
	@PATH="$$PATH:/usr/sbin" $(PY) -m native up

local-down: install ## Stop exactly what `make local` started
	@$(PY) -m native down

local-ps: install ## Show the native cluster's processes and health
	@PATH="$$PATH:/usr/sbin" $(PY) -m native ps

local-stop: ## Stop one native instance (INSTANCE=app2) to watch failover, or Redis (INSTANCE=redis) to watch an outage
	@$(PY) -m native stop $(INSTANCE)

local-start: ## Start one stopped native instance (or INSTANCE=redis) again, with the settings (APP, ...) the cluster was started with
	@$(PY) -m native start $(INSTANCE)

rolling-restart: install ## Restart every instance one at a time, nothing lost (native or compose, whichever runs)
	@PATH="$$PATH:/usr/sbin" $(PY) -m control.rolling --project $(COMPOSE_PROJECT)

##@ Tests

.PHONY: lint
lint: install ## Check the Python code with ruff (rules in pyproject.toml)
	$(PY) -m ruff check .

.PHONY: test test-unit test-local test-hostile test-doctor test-browser test-compose test-package test-observability test-swarm test-k8s
TEST_SUITES := lint test-unit test-package test-local test-hostile test-doctor test-browser \
	test-compose test-observability test-swarm test-k8s

test: ## Run every test suite (and lint), one after another, each timed
	@for suite in $(TEST_SUITES); do \
		started=$$(date +%s); \
		$(MAKE) --no-print-directory $$suite || exit $$?; \
		echo "make test: $$suite took $$(( $$(date +%s) - started )) s"; \
	done

test-unit: install ## Unit tests (no network, no processes)
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

test-package: install ## Build the sio-doctor/sio-loadtest wheel, install it in a fresh venv, run both
	$(PY) -m pytest -q tests/package $(PYTEST_ARGS)

# Test files of make test-local that run at once (pytest-xdist): each file
# starts its own clusters on free ports, and they mostly wait (reconnects,
# outages), so 4 take 130 s where one at a time took 350 s on 2 cores.
TEST_PROCESSES ?= 4

test-local: deps install page-deps ## Integration tests against a native cluster (real redis, nginx, gunicorn), eventlet and gevent (TEST_PROCESSES files at once)
	PATH="$$PATH:/usr/sbin" $(PY) -m pytest -q tests/integration tests/loadtest --target local \
		-n $(TEST_PROCESSES) --dist loadfile $(PYTEST_ARGS)

# tests/compose/test_your_app.py starts a compose project of its own
# (examples/teamchat through APP), after the main cluster is down: both
# projects render into compose/.generated/. It removes its project itself,
# pass or fail; the `down` after it catches a run that was killed.
APP_TEST_PROJECT := socketio-kit-app-test

test-compose: install page-deps ## Cluster tests against the compose cluster, then examples/teamchat through APP in a project of its own (skipped, in one line, when no Docker engine answers)
	@if ! docker info >/dev/null 2>&1; then \
		if [ "$(REQUIRE_COMPOSE)" = 1 ]; then echo "test-compose: no Docker engine answers, and REQUIRE_COMPOSE=1 forbids skipping." >&2; exit 1; fi; \
		echo "test-compose: skipped: no Docker engine answers (start dockerd to run it)."; exit 0; fi; \
	status=0; \
	INSTANCES=3 compose/up || status=$$?; \
	if [ $$status = 0 ]; then \
		$(PY) -m pytest -q tests/integration tests/compose tests/loadtest/test_scenarios.py --target compose \
			--ignore=tests/compose/test_your_app.py \
			--compose-url http://127.0.0.1:$(HTTP_PORT) --compose-project $(COMPOSE_PROJECT) $(PYTEST_ARGS) || status=$$?; \
	else $(RUN_COMPOSE) logs --tail=40; fi; \
	INSTANCES=3 $(RUN_COMPOSE) down -v --remove-orphans; \
	KIT_APP_TEST_PROJECT=$(APP_TEST_PROJECT) $(PY) -m pytest -q tests/compose/test_your_app.py \
		--target compose $(PYTEST_ARGS) || { rc=$$?; [ $$rc = 5 ] || status=$$rc; }; \
	$(COMPOSE) -p $(APP_TEST_PROJECT) down -v --remove-orphans >/dev/null 2>&1; exit $$status

test-observability: install page-deps ## PROFILE=observability in a compose project of its own: Prometheus targets and the clients gauge (skipped without a Docker engine unless REQUIRE_COMPOSE=1)
	REQUIRE_COMPOSE=$(REQUIRE_COMPOSE) $(PY) -m pytest -q -s tests/observability $(PYTEST_ARGS)

test-swarm: install page-deps ## Cluster tests against a Swarm stack of their own on a free port, then `docker stack rm` (skipped, in one line, without a Docker engine)
	@if ! docker info >/dev/null 2>&1; then \
		if [ "$(REQUIRE_SWARM)" = 1 ]; then echo "test-swarm: no Docker engine answers, and REQUIRE_SWARM=1 forbids skipping." >&2; exit 1; fi; \
		echo "test-swarm: skipped: no Docker engine answers (start dockerd to run it)."; exit 0; fi; \
	port=$$($(PY) -c 'from native.net import free_ports; print(free_ports(1)[0])'); \
	export SWARM_STACK=$(SWARM_TEST_STACK) SWARM_HTTP_PORT=$$port INSTANCES=3; \
	status=0; compose/swarm-up || status=$$?; \
	if [ $$status = 0 ]; then \
		KIT_TEST_TOKEN=$$($(SWARM_MINT) --sub tests --ttl 7200) \
		$(PY) -m pytest -q tests/integration tests/swarm --target swarm \
			--swarm-url http://127.0.0.1:$$port --swarm-stack $(SWARM_TEST_STACK) $(PYTEST_ARGS) || status=$$?; \
	else docker stack ps --no-trunc $(SWARM_TEST_STACK) || true; fi; \
	compose/swarm-down || status=$$?; exit $$status

test-k8s: deps k8s-deps install ## deploy/k8s: every overlay builds and validates; its nginx.conf routes pod-named instances via dnsmasq
	PATH="$$PATH:/usr/sbin" $(PY) -m pytest -q tests/k8s $(PYTEST_ARGS)

test-hostile: deps install page-deps ## The attack suite: each attack, then every instance still serves, same worker, bounded memory
	PATH="$$PATH:/usr/sbin" $(PY) -m pytest -q tests/hostile $(PYTEST_ARGS)

test-doctor: deps install ## The doctor: no FAIL on the kit, each broken fixture's fault named
	PATH="$$PATH:/usr/sbin" $(PY) -m pytest -q tests/doctor $(PYTEST_ARGS)

test-browser: deps install page-deps browser-deps ## The demo page in headless Chromium (screenshots in artifacts/browser/)
	PATH="$$PATH:/usr/sbin" BROWSER_REQUIRED=1 $(PY) -m pytest -q tests/browser $(PYTEST_ARGS)

##@ Load test

.PHONY: loadtest bench
loadtest: install ## One load-test scenario against the running cluster (SCENARIO=broadcast|reconnect|redis-outage|rolling-restart|ramp|slow-consumer|selftest CLIENTS= URL= LOADTEST_ARGS=)
	$(PY) -m loadtest $(SCENARIO) --url $(URL) --origin $(ORIGIN) --clients $(CLIENTS) $(LOADTEST_ARGS)

bench: install ## The issue-8 shape against the running cluster; writes BENCHMARKS.md and bench/results/ (BENCH_ARGS=--start-native: private clusters per worker class; --compose-url URL)
	PATH="$$PATH:/usr/sbin" $(PY) -m loadtest.bench --url $(URL) --origin $(ORIGIN) $(BENCH_ARGS)

##@ Doctor and demo page

.PHONY: doctor doctor-table page-deps browser-deps
doctor: install ## Diagnose a Socket.IO deployment as a page on ORIGIN sees it (URL=, ORIGIN=, DOCTOR_ARGS=--slow)
	$(PY) -m doctor $(URL) --origin $(ORIGIN) $(DOCTOR_ARGS)

doctor-table: deps install ## Print what the doctor says about each broken fixture (the README table)
	PATH="$$PATH:/usr/sbin" $(PY) -m tests.fixtures.table

page-deps: $(PAGE_DEPS) ## Install socket.io-client (and playwright-core for the browser test) from npm

$(PAGE_DEPS): page/package.json page/package-lock.json
	cd page && npm ci --no-audit --no-fund
	@touch $@

browser-deps: ## Install Debian's chromium if missing
	@[ -x /usr/bin/chromium ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
