# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: run test test-n8n lint lock bench clean translations

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps: reinstall only when the package metadata changes.
$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed  ## migrate, create the first admin, serve on 127.0.0.1:7308
	$(BIN)/kabar init
	$(BIN)/kabar run

test: $(VENV)/.installed-dev  ## the whole suite, on SQLite and PostgreSQL
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# n8n-nodes-kabar: its unit tests, then a real n8n 1.x running the package against
# `kabar run` (tests/n8n). n8n is installed once into .cache/n8n (git-ignored).
N8N_PKG = integrations/n8n-nodes-kabar
N8N_HOST = $(N8N_PKG)/test/n8n-host/package.json
N8N_CACHE = .cache/n8n

$(N8N_CACHE)/.installed: $(N8N_HOST)
	mkdir -p $(N8N_CACHE)
	cp $(N8N_HOST) $(N8N_CACHE)/package.json
	@echo "Installing n8n into $(N8N_CACHE) (several minutes on a cold npm cache)"
	cd $(N8N_CACHE) && time npm install --no-audit --no-fund --loglevel=error
	touch $@

$(N8N_PKG)/node_modules/.installed: $(N8N_PKG)/package.json $(N8N_PKG)/package-lock.json
	cd $(N8N_PKG) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

test-n8n: $(VENV)/.installed-dev $(N8N_CACHE)/.installed $(N8N_PKG)/node_modules/.installed
	cd $(N8N_PKG) && npm test
	KABAR_N8N_TESTS=1 $(BIN)/python -m pytest tests/n8n $(PYTEST_ARGS)

# Every check that reads the code without running it, one tool a line: a new check is one
# more line. `ruff format server nodes tests bench` fixes what the format check finds.
LINT_PATHS = server nodes tests bench
lint: $(VENV)/.installed-dev  ## ruff, the formatter's check, mypy, the import layers (pyproject.toml)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy
	$(BIN)/lint-imports

# Every figure of docs/benchmarks.md's "Performance (issue 15)" sections, on SQLite and then
# on PostgreSQL (BENCH_DB, dropped and made anew by each script), one script at a time so
# they do not load each other (the default BENCH_DB is created if missing). 16 minutes on
# 2 cores; prints figures, asserts nothing timed. Run it on an otherwise idle machine.
BENCH_DB ?= postgresql+psycopg://postgres@127.0.0.1:5432/kabar_bench
BENCH_SECONDS ?= 10
bench: $(VENV)/.installed-dev
	-@createdb -h 127.0.0.1 -U postgres kabar_bench 2>/dev/null
	@for db in "" "--database $(BENCH_DB)"; do \
	  set -e; echo "=== database: $${db:-SQLite}"; \
	  $(BIN)/python bench/send.py --seconds $(BENCH_SECONDS) $$db; \
	  $(BIN)/python bench/outbox.py drain --sessions 1 --messages 5000 --chats 500 --receipts $$db; \
	  $(BIN)/python bench/outbox.py drain --sessions 50 --messages 5000 --chats 20 --receipts $$db; \
	  $(BIN)/python bench/webhooks.py --rate 200 --seconds $(BENCH_SECONDS) $$db; \
	  $(BIN)/python bench/workflows.py $$db auto-reply --messages 300; \
	  $(BIN)/python bench/workflows.py $$db waiting; \
	  $(BIN)/python bench/sessions.py $$db sandbox --sessions 200; \
	  $(BIN)/python bench/hook_vs_n8n.py --seconds $(BENCH_SECONDS) --rounds 3 $$db; \
	done

# requirements.lock: the deployable app's dependencies (setup.cfg's install_requires and
# theirs), pinned with hashes, for every platform and Python 3.11+ (docs/deploy.md). After a
# change to setup.cfg, `make lock` solves again keeping the pins it can;
# `make lock LOCK_ARGS=--upgrade` moves every pin to the newest allowed version.
lock: $(VENV)/.installed-dev
	$(BIN)/uv pip compile setup.cfg --universal --python-version 3.11 --generate-hashes \
		--custom-compile-command "make lock" --quiet $(LOCK_ARGS) -o requirements.lock

UI = server/ui
translations: $(VENV)/.installed-dev  ## the dashboard's texts: extract, update the catalogues, compile
	$(BIN)/pybabel extract -F $(UI)/babel.cfg -k lazy_gettext --no-location --sort-output \
		-o $(UI)/translations/messages.pot $(UI)
	$(BIN)/pybabel update -i $(UI)/translations/messages.pot -d $(UI)/translations --width 100
	$(BIN)/pybabel compile -d $(UI)/translations
	rm $(UI)/translations/messages.pot

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache *.egg-info
