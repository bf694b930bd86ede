# nova-temporal. `make demo` and `make test` work on a fresh Debian 12 machine as root.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE_TEST := node --test --test-concurrency=1 --test-reporter=spec

.PHONY: help deps host node-deps build lint test test-unit test-integration up down demo clean

help:
	@echo "make demo   set up what is missing, start the stack, power on a demo instance"
	@echo "make test   set up what is missing and run every test (lint, unit, integration)"
	@echo "make up / make down   start / stop the local stack (state/stack.env)"

## Installs what is missing: Debian packages, host daemons, the Temporal CLI, npm packages.
deps: host node-deps

host:
	@bash scripts/host-setup.sh
	@bash scripts/temporal-cli.sh >/dev/null
	@bash scripts/schemathesis.sh >/dev/null
	@bash deploy/hadolint.sh >/dev/null

# npm ci only when package-lock.json changed since the last install (it also builds native/).
node-deps: node_modules/.package-lock.json
node_modules/.package-lock.json: package-lock.json package.json native/binding.gyp $(wildcard native/src/*)
	npm ci --no-audit --no-fund
	@touch $@

build: node-deps
	npx tsc -p tsconfig.json

lint: node-deps
	npx eslint .
	npx prettier --check .

test-unit: build
	$(NODE_TEST) dist/test/unit/

test-integration: deps build
	$(NODE_TEST) dist/test/integration/ test/native/

test: deps build lint
	$(NODE_TEST) dist/test/unit/ dist/test/integration/ test/native/

up: deps build
	@bash scripts/stack.sh up

down:
	@bash scripts/stack.sh down

demo: up
	@node dist/src/cli/demo.js

# Not part of `make test`: measures the power-on on the real stack (under 10 minutes);
# writes bench/results/<time>-<commit>.json and the tables in docs/benchmarks.md.
.PHONY: bench
bench: deps build
	node dist/bench/main.js

clean:
	rm -rf dist native/build
