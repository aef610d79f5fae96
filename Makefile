# FLOPs Meter. `make demo` and `make test` each create/refresh the virtualenv themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo
CDK_STAMP := $(VENV)/.installed-cdk
# Locks (make lock refreshes them with uv pip compile): dev = every extra + the dev tools (make install / test),
# demo = local + training (make demo), cdk = infra (synth / diff / deploy / destroy). Python 3.11, Linux x86-64.
LOCKS := requirements
TORCH_PIN := $(shell grep -m1 '^torch==' $(LOCKS)/torch-cpu.txt)
# Where the CPU torch wheel comes from when pip has no local wheel folder holding it (override for a mirror).
TORCH_WHEELS ?= https://download.pytorch.org/whl/torch/
UV_VERSION := 0.13.8
UV_VENV := .build/uv
UV := $(UV_VENV)/bin/uv
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
PYTEST_WORKERS ?= 2
# cdk deploy stops for a yes/no on every IAM or security-group change that widens access (override: APPROVAL=never).
APPROVAL ?= broadening
CDK := npx --yes aws-cdk@2
CDK_APP := $(BIN)/python app.py
# checkov in its own virtualenv: it pins boto3, packaging and networkx to versions the project's tools outgrew.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := .build/checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov

.DEFAULT_GOAL := help
.PHONY: help install venv lock demo demo-org test test-unit test-integration test-infra test-torch test-slow test-oldest test-wheel lint format \
        typecheck check synth cfn-lint checkov build diff deploy destroy test-e2e bench bench-accuracy bench-overhead bench-load \
        bench-query bench-coldstart bench-scale report-screenshot chromium clean example-wheel

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'

# $(call venv_from,LOCK): the venv, the CPU torch when the lock has it (a local wheel folder first, else TORCH_WHEELS),
# the lock's pins, then this project itself (editable, no further resolution). The index's unrelated `flopsmeter`
# distribution (this project's old name) is removed first.
define venv_from
	@echo "installing $(1) into $(VENV) (first time: a minute or two; the CPU torch is the largest download)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@if grep -q '^torch==' $(1); then \
	  $(BIN)/python -m pip install -q --no-deps --no-index '$(TORCH_PIN)' 2>/dev/null \
	  || $(BIN)/python -m pip install -q --no-deps --no-index --find-links $(TORCH_WHEELS) '$(TORCH_PIN)'; fi
	$(BIN)/python -m pip install -q -r $(1)
	@$(BIN)/python -m pip uninstall -q -y flopsmeter 2>/dev/null || true
	$(BIN)/python -m pip install -q --no-deps -e .
endef

$(STAMP): pyproject.toml $(LOCKS)/dev.txt
	$(call venv_from,$(LOCKS)/dev.txt)
	@touch $(STAMP) $(DEMO_STAMP) $(CDK_STAMP)

$(DEMO_STAMP): pyproject.toml $(LOCKS)/demo.txt
	$(call venv_from,$(LOCKS)/demo.txt)
	@touch $(DEMO_STAMP)

$(CDK_STAMP): pyproject.toml $(LOCKS)/cdk.txt
	$(call venv_from,$(LOCKS)/cdk.txt)
	@touch $(CDK_STAMP)

install: $(STAMP) ## create or refresh .venv from requirements/dev.txt (every extra, the dev tools, CPU torch)

venv: install ## alias of install

$(UV):
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install -q uv==$(UV_VERSION)

# dev first; demo and cdk are then resolved within it (-c dev.txt): the same versions everywhere, so the demo and the
# CDK app run the Powertools and pydantic the dev pins match to the Lambda layer.
lock: $(UV) ## refresh requirements/{dev,demo,cdk}.txt from pyproject.toml (uv pip compile; TORCH_WHEELS: where +cpu is)
	@for spec in "dev:--extra dev" "demo:--extra local --extra training -c $(LOCKS)/dev.txt" \
	    "cdk:--extra infra -c $(LOCKS)/dev.txt"; do \
	  $(UV) pip compile -q pyproject.toml $${spec#*:} --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	    --find-links $(TORCH_WHEELS) -c $(LOCKS)/torch-cpu.txt --no-header --annotation-style line \
	    -o $(LOCKS)/$${spec%%:*}.txt || exit 1; done

demo: $(DEMO_STAMP) ## the product's main job on the embedded local AWS emulator (no account, no network)
	$(BIN)/flopsmeter demo

demo-org: $(DEMO_STAMP) ## organization mode on the emulator: two member accounts, one without the role, one query
	$(BIN)/flopsmeter demo --org

lint: $(STAMP) ## ruff lint + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## ruff format + autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP) ## mypy, strict, over flopsmeter, lambdas, infra and bench
	$(BIN)/mypy flopsmeter lambdas infra bench

test-unit: $(STAMP) ## unit tests (pure domain, handlers with fakes)
	$(BIN)/pytest -q tests/unit -m "not slow and not e2e"

test-integration: $(STAMP) ## integration tests against moto
	$(BIN)/pytest -q tests/integration -m "not slow and not e2e"

test-infra: $(STAMP) ## CDK synth + assertions + cdk-nag, then cfn-lint and checkov on the template
	$(BIN)/pytest -q tests/infra -m "not slow and not e2e"
	$(MAKE) --no-print-directory cfn-lint checkov

test-torch: $(STAMP) ## formulas vs FlopCounterMode and the meter on real (tiny) fine-tuning runs
	$(BIN)/pytest -q -m "torch and not slow" tests

test-slow: $(STAMP) chromium ## heavy suites kept out of `make test` (full demo with training, report in Chromium)
	$(BIN)/pytest -q -m slow tests

# The meter's tests: what test-oldest runs against the oldest transformers / PEFT / TRL / datasets the package declares.
OLDEST_VENV := .build/oldest
METER_TESTS := tests/unit/training tests/unit/domain/test_flops_groundtruth.py tests/unit/domain/test_towers.py \
	tests/unit/domain/test_flops_attention.py tests/integration/test_training_callback.py \
	tests/integration/test_training_robustness.py tests/integration/test_training_trl.py \
	tests/integration/test_training_architectures.py tests/integration/test_training_distributed.py

test-oldest: ## the meter's tests + bench-accuracy on the declared floors (own venv .build/oldest; slow, not in test)
	@test -x $(OLDEST_VENV)/bin/python || $(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install -q torch==2.13.0
	$(OLDEST_VENV)/bin/python -m pip install -q -e . $$($(PYTHON) -m tests.support.oldest_pins) 'boto3>=1.35' \
		'moto[server]>=5.2,<5.3' pytest pytest-xdist
	$(OLDEST_VENV)/bin/python -m pip list 2>/dev/null | grep -iE '^(torch|transformers|peft|trl|datasets|accelerate) '
	$(OLDEST_VENV)/bin/pytest -q -n $(PYTEST_WORKERS) -p no:cacheprovider -m "torch and not slow" $(METER_TESTS)
	$(OLDEST_VENV)/bin/python -m bench.accuracy > $(OLDEST_VENV)/accuracy.json && tail -c 400 $(OLDEST_VENV)/accuracy.json

test-wheel: $(STAMP) ## build the wheel; in a fresh venv from an empty folder: the base install runs the pre-flight, [local] the demo
	$(BIN)/pytest -q tests/integration/test_local_wheel.py -m "not slow"

test: $(STAMP) $(CHECKOV) ## everything offline: lint, typecheck, all suites but slow/e2e, cfn-lint, checkov (what CI runs)
	$(MAKE) --no-print-directory lint typecheck
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) -m "not slow and not e2e" tests
	$(MAKE) --no-print-directory cfn-lint checkov

check: test ## alias of test

build: $(STAMP) ## stage lambdas/ + flopsmeter/ into .build/lambda
	$(BIN)/python -m infra.assets

synth: $(CDK_STAMP) ## synthesize the CloudFormation template into cdk.out (offline, cdk-nag on)
	CDK_OUTDIR=cdk.out $(BIN)/python app.py

cfn-lint: synth ## cfn-lint on the synthesized templates
	$(BIN)/cfn-lint cdk.out/*.template.json

$(CHECKOV):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q checkov==$(CHECKOV_VERSION)

checkov: synth $(CHECKOV) ## checkov (a second IaC scanner) on the synthesized templates; skips carry reasons
	$(CHECKOV) $$(for t in cdk.out/*.template.json; do printf -- '-f %s ' "$$t"; done) \
		--framework cloudformation --skip-download --compact --quiet

diff: $(CDK_STAMP) ## cdk diff against the account in your AWS profile (needs the CDK CLI: npx aws-cdk)
	$(CDK) diff --app "$(CDK_APP)"

deploy: $(CDK_STAMP) ## cdk deploy every stack of the app (credentials, `cdk bootstrap` once); asks before IAM changes (APPROVAL=never skips)
	$(CDK) deploy --all --app "$(CDK_APP)" --require-approval $(APPROVAL)

destroy: $(CDK_STAMP) ## cdk destroy every stack of the app (the object-locked audit bucket is retained by design)
	$(CDK) destroy --all --app "$(CDK_APP)"

test-e2e: $(STAMP) ## against a deployed stack: FLOPSMETER_STACK=<name> make test-e2e
	$(BIN)/pytest -q -m e2e tests/e2e

example-wheel: $(STAMP) ## this project's wheel into examples/wheels/ (the training-job example installs it in the job)
	rm -rf examples/wheels
	$(BIN)/python -m pip wheel -q --no-deps -w examples/wheels .

bench-accuracy: $(STAMP) ## meter vs FlopCounterMode on short real fine-tuning runs (JSON)
	$(BIN)/python -m bench.accuracy

bench-overhead: $(STAMP) ## step time with and without the meter (JSON)
	$(BIN)/python -m bench.overhead

# bench-load: the deployment the stack recommends (launch calls captured), then the no-trail fallback (LookupEvents at
# the classifier's documented pace); each JSON is printed and kept in bench/results/ (the README quotes those files).
BENCH_LOAD_ARGS ?= --events 2000
BENCH_LOAD_FALLBACK_ARGS ?= --events 200
bench-load: $(STAMP) ## 2 000 events through EventBridge -> SQS -> handler on moto, with capture; then 200 without (JSON)
	@mkdir -p bench/results
	$(BIN)/python -m bench.load $(BENCH_LOAD_ARGS) --out bench/results/load.json
	$(BIN)/python -m bench.load --fallback $(BENCH_LOAD_FALLBACK_ARGS) --out bench/results/load-fallback.json

bench-query: $(STAMP) ## query presets over 100 000 synthetic records (JSON); BENCH_QUERY_ARGS="--records 1000000 --compacted [--prepare]"
	$(BIN)/python -m bench.query $(BENCH_QUERY_ARGS)

bench-scale: $(STAMP) ## 3 000 jobs in one simulated hour through the emulator: who launched each, LookupEvents calls (JSON)
	$(BIN)/python -m bench.scale

bench-coldstart: $(STAMP) ## classifier init time and warm latency as packaged (JSON)
	$(BIN)/python -m bench.coldstart

bench: bench-accuracy bench-overhead bench-query bench-coldstart bench-load ## every benchmark

chromium: ## install Debian's chromium if it is missing (headless browser checks; needs root or sudo)
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

report-screenshot: $(STAMP) chromium ## render the demo's report in headless Chromium, check it, save a PNG
	$(BIN)/python -m bench.report_screenshot

clean: ## remove build outputs (keeps .venv)
	rm -rf cdk.out .build .local out .mypy_cache .ruff_cache .pytest_cache .hypothesis
