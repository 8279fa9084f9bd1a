# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: run test test-n8n lint bench clean translations

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

lint: $(VENV)/.installed-dev  ## ruff, and the import layers of ARCHITECTURE.md (pyproject.toml)
	$(BIN)/ruff check server nodes tests bench
	$(BIN)/lint-imports

UI = server/ui
translations: $(VENV)/.installed-dev  ## the dashboard's texts: extract, update the catalogues, compile
	$(BIN)/pybabel extract -F $(UI)/babel.cfg -k lazy_gettext --no-location --sort-output \
		-o $(UI)/translations/messages.pot $(UI)
	$(BIN)/pybabel update -i $(UI)/translations/messages.pot -d $(UI)/translations --width 100
	$(BIN)/pybabel compile -d $(UI)/translations
	rm $(UI)/translations/messages.pot

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
