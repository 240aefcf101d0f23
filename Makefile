# The two commands of the README are the contract: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help run up down test bench migrate postman lint fmt

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

run: ## start everything in the foreground and run the demo (Ctrl-C stops it)
	@bash scripts/stack.sh run

up: ## start everything in the background
	@bash scripts/stack.sh up

down: ## stop what `make up` started
	@bash scripts/stack.sh down

test: ## run the whole test suite (starts Postgres if needed)
	@bash scripts/test.sh

bench: ## measure reserve throughput against a pgbench baseline; writes BENCHMARKS.md
	@bash scripts/bench.sh

migrate: ## apply database migrations to $$DATABASE_URL
	@source scripts/common.sh && bash scripts/ensure-postgres.sh && cargo run -q -p api --bin oms-api -- migrate

postman: ## regenerate the committed Postman collection from the OpenAPI document
	@mkdir -p postman && cargo run -q -p api --bin oms-api -- postman > postman/oms.postman_collection.json

lint: ## clippy with warnings as errors
	cargo clippy --workspace --all-targets -- -D warnings

fmt: ## format the code
	cargo fmt --all
