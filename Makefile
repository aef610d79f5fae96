# FLOPs Meter. `make demo` and `make test` each create/refresh the virtualenv themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
PYTEST_WORKERS ?= 2

.DEFAULT_GOAL := help
.PHONY: help install venv demo test test-unit test-integration test-infra test-torch test-slow lint format typecheck \
        check synth cfn-lint build diff deploy destroy test-e2e bench bench-accuracy bench-overhead bench-load \
        bench-query bench-coldstart report-screenshot chromium clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: the CPU wheel (an unpinned torch pulls a multi-GB CUDA build)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install venv: $(STAMP) ## create or refresh .venv with every extra and the dev tools

demo: $(STAMP) ## the product's main job on the embedded local AWS emulator (no account, no network)
	$(BIN)/flopsmeter demo

lint: $(STAMP) ## ruff lint + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## ruff format + autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP) ## mypy (strict on flopsmeter/domain)
	$(BIN)/mypy flopsmeter lambdas

test-unit: $(STAMP) ## unit tests (pure domain, handlers with fakes)
	$(BIN)/pytest -q tests/unit -m "not slow and not e2e"

test-integration: $(STAMP) ## integration tests against moto
	$(BIN)/pytest -q tests/integration -m "not slow and not e2e"

test-infra: $(STAMP) ## CDK synth + assertions + cdk-nag, and cfn-lint on the template
	$(BIN)/pytest -q tests/infra -m "not slow and not e2e"
	$(MAKE) --no-print-directory cfn-lint

test-torch: $(STAMP) ## formulas vs FlopCounterMode and the meter on real (tiny) fine-tuning runs
	$(BIN)/pytest -q -m "torch and not slow" tests

test-slow: $(STAMP) chromium ## heavy suites kept out of `make test` (full demo with training, report in Chromium)
	$(BIN)/pytest -q -m slow tests

test: $(STAMP) ## everything offline: lint, typecheck, all suites but slow/e2e, cfn-lint (what CI runs)
	$(MAKE) --no-print-directory lint typecheck
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) -m "not slow and not e2e" tests
	$(MAKE) --no-print-directory cfn-lint

check: test ## alias of test

build: $(STAMP) ## stage lambdas/ + flopsmeter/ into .build/lambda
	$(BIN)/python -m infra.assets

synth: $(STAMP) ## synthesize the CloudFormation template into cdk.out (offline, cdk-nag on)
	CDK_OUTDIR=cdk.out $(BIN)/python app.py

cfn-lint: synth ## cfn-lint on the synthesized templates
	$(BIN)/cfn-lint cdk.out/*.template.json

diff: $(STAMP) ## cdk diff against the account in your AWS profile (needs the CDK CLI: npx aws-cdk)
	npx --yes aws-cdk@2 diff

deploy: $(STAMP) ## cdk deploy (needs credentials and `cdk bootstrap` once per account/region)
	npx --yes aws-cdk@2 deploy --require-approval never

destroy: $(STAMP) ## cdk destroy (the object-locked audit bucket is retained by design)
	npx --yes aws-cdk@2 destroy

test-e2e: $(STAMP) ## against a deployed stack: FLOPSMETER_STACK=<name> make test-e2e
	$(BIN)/pytest -q -m e2e tests/e2e

bench-accuracy: $(STAMP) ## meter vs FlopCounterMode on short real fine-tuning runs (JSON)
	$(BIN)/python bench/accuracy.py

bench-overhead: $(STAMP) ## step time with and without the meter (JSON)
	$(BIN)/python bench/overhead.py

bench-load: $(STAMP) ## 10 000 events through EventBridge -> SQS -> handler on a local moto server (JSON)
	$(BIN)/python -m bench.load

bench-query: $(STAMP) ## query presets over 100 000 synthetic records (JSON); BENCH_QUERY_ARGS="--records 1000000 --compacted"
	$(BIN)/python -m bench.query $(BENCH_QUERY_ARGS)

bench-coldstart: $(STAMP) ## classifier init time and warm latency as packaged (JSON)
	$(BIN)/python bench/coldstart.py

bench: bench-accuracy bench-overhead bench-query bench-coldstart bench-load ## every benchmark

chromium: ## install Debian's chromium if it is missing (headless browser checks; needs root or sudo)
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

report-screenshot: $(STAMP) chromium ## render the demo's report in headless Chromium, check it, save a PNG
	$(BIN)/python -m bench.report_screenshot

clean: ## remove build outputs (keeps .venv)
	rm -rf cdk.out .build .local out .mypy_cache .ruff_cache .pytest_cache .hypothesis
