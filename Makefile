# ims-action: see README.md. `make demo` and `make test` are all a newcomer needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo
NODE_BIN := target/debug/ims-action

.PHONY: test-deps docs-check help build package launcher demo ui test lint unit node-test ui-test ui-screenshots bench-test bench bench-quick validate deploy-wsk deploy-aio fuzz clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s "$$(printf '\t')"

build: ## Static release binary (musl; glibc +crt-static fallback) at dist/ims-action
	@scripts/build-static.sh

package: build ## dist/ims-action.zip (exec at top level) and the App Builder launcher folder
	@scripts/package.sh dist/ims-action

launcher: build ## actions/ims-action/bin/exec, for aio app deploy / aio app dev
	@scripts/build-launcher.sh dist/ims-action

demo: ## Run the action against the bundled Adobe emulator, once per credential kind
	@scripts/demo.sh

ui: ## The credential-health web view on 127.0.0.1 against the emulator (UI_PORT=N picks the port); Ctrl-C stops it
	@$(CARGO) build --quiet -p ims-action -p adobe-emulator
	@exec node tools/ui/server.js --bin target/debug/ims-action --emulator target/debug/adobe-emulator $(if $(UI_PORT),--port $(UI_PORT))

test: test-deps docs-check lint unit node-test ui-test bench-test ## Docs checks, format, lint, unit + end-to-end tests (real OpenWhisk proxies too), Node launcher and deploy script tests, browser tests, bench unit tests

test-deps:
	@scripts/test-deps.sh

# scripts/check-docs.py: links and anchors resolve, every doc is reachable from the README, every
# error kind and marked message has a row in docs/operations.md, the Quickstart is what CI runs.
docs-check: ## Check the docs (links, reachability, operations.md coverage, Quickstart); its own tests first
	python3 -m unittest discover -s scripts/test -p 'test_*.py'
	python3 scripts/check-docs.py

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The conformance tests (tests/conformance/) drive the release static binary through the real
# OpenWhisk proxies; plain `cargo test` drives the debug binary instead.
unit: build
	IMS_ACTION_RELEASE_BIN=$(CURDIR)/dist/ims-action $(CARGO) test --workspace

node-test:
	$(CARGO) build --quiet --bin ims-action --bin adobe-emulator
	IMS_ACTION_BIN=$(NODE_BIN) node --test actions/ims-action/test/ scripts/test/

ui-test: ## Browser tests of the web view (headless Chromium against the emulator)
	@tools/ui/test.sh

ui-screenshots: ## Browser tests, keeping their screenshots in docs/ (ui-health.png, ui-health-refused.png)
	@UI_SCREENSHOTS=docs tools/ui/test.sh

bench-test:
	python3 -m unittest discover -s bench/tests -t bench

bench: ## Benchmarks side by side with Adobe's Node samples, over a delayed HTTPS link too, the token stores, this release vs the one before (IMS_ACTION_BEFORE_BIN); writes BENCHMARKS.md
	python3 bench/run.py

bench-quick: ## A smaller, faster set of the benchmarks; writes under bench/.build/quick/
	python3 bench/run.py --quick

validate: ## Check ext.config.yaml against Adobe's own schema (@adobe/aio-cli-lib-app-config)
	@scripts/validate.sh

deploy-wsk: package ## Deploy with wsk; VARIANTS="actionloop native launcher" (default: actionloop native)
	@scripts/deploy-wsk.sh $(VARIANTS)

deploy-aio: ## Deploy with aio app deploy (Node launcher + static binary)
	@scripts/deploy-aio.sh

fuzz: ## Run the fuzz targets (see docs/architecture.md, Fuzzing)
	@fuzz/run.sh

clean: ## Remove build output
	$(CARGO) clean
	rm -rf dist actions/ims-action/bin
