# seedsync: one command to run the whole system locally, one to test it all.
#   make setup   install the toolchain pieces the build needs (idempotent; make dev/test run it)
#   make up      Cassandra + NATS (events) + origins eu/us/asia (127.0.0.1:8081-8083) + edge (127.0.0.1:8787), in the background
#   make dev     make up, then follow the logs until Ctrl-C (which stops the stack)
#   make down    stop everything `make up` started
#   make test    every test: lint, unit, integration (real Cassandra), Worker in workerd, browser e2e
#   make fuzz    Schemathesis against a fresh origin + edge from docs/openapi*.yaml (make test's contract stage)
#   make deploy-check   the production Worker bundle (wrangler deploy --dry-run --env production) checked
#   make image   the origin image with podman (offline base; scripts/container.sh), run and stopped once
#   make compose-test   docker-compose.yml up with podman-compose (offline stand-in images), a game through it, torn down
#   make helm    the Helm chart linted, rendered and schema-validated (scripts/helm.sh)
#   make bench   all benchmarks (engine, origin, edge, auth, events); or bench-engine / bench-origin /
#                bench-edge / bench-auth / bench-events
#   make bench-live   live rooms (viewers per minute vs tick streaming, exit latency)
#   make bench-abuse  the honest client's p99 start latency under each attack vs alone (<= 3x)
#   make bench-sealed sealed-v1 rooms: messages per viewer-minute vs streaming and mix32-v1, break -> key
#   make bench-seats  shared games: joins/s into one game and into many, seat result -> 100 sockets p50/p99
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(CURDIR)/target

.PHONY: setup up dev down status logs test fuzz deploy-check image compose-test helm bench bench-engine bench-origin bench-edge bench-auth bench-events bench-live bench-abuse bench-sealed bench-seats clean-run

setup:
	@bash scripts/setup.sh

up: setup
	@bash scripts/stack.sh up

dev: up
	@trap 'bash scripts/stack.sh down' INT TERM EXIT; bash scripts/stack.sh logs

down:
	@bash scripts/stack.sh down

status:
	@bash scripts/stack.sh status

logs:
	@bash scripts/stack.sh logs

test: setup
	@bash scripts/test.sh

fuzz: setup
	@bash scripts/fuzz-api.sh

deploy-check: setup
	@bash scripts/deploy-check.sh

image: setup
	@bash scripts/container.sh test

compose-test: setup
	@bash scripts/compose-test.sh

helm:
	@bash scripts/helm.sh

bench: bench-engine bench-origin bench-edge bench-auth bench-events

bench-engine: setup
	@bash scripts/bench-engine.sh

bench-origin: setup
	@bash scripts/bench-origin.sh

bench-edge: setup
	@bash scripts/bench-edge.sh

bench-events: setup
	@bash scripts/bench-events.sh

# Live rooms: server -> viewer traffic vs tick streaming, exit-to-viewer latency.
bench-live: setup
	@bash scripts/bench-live.sh

bench-abuse: setup
	@bash scripts/bench-abuse.sh

bench-sealed: setup
	@bash scripts/bench-sealed.sh

bench-seats: setup
	@bash scripts/bench-seats.sh

clean-run: down
	@bash scripts/cassandra.sh wipe

bench-auth: setup
	@bash scripts/bench-auth.sh
