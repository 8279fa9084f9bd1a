# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: run test lint bench clean translations

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

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check server nodes tests bench

UI = server/ui
translations: $(VENV)/.installed-dev  ## the dashboard's texts: extract, update the catalogues, compile
	$(BIN)/pybabel extract -F $(UI)/babel.cfg -k lazy_gettext --no-location --sort-output \
		-o $(UI)/translations/messages.pot $(UI)
	$(BIN)/pybabel update -i $(UI)/translations/messages.pot -d $(UI)/translations --width 100
	$(BIN)/pybabel compile -d $(UI)/translations
	rm $(UI)/translations/messages.pot

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
