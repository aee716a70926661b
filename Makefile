# The two commands: `make up` starts the whole system, `make test` runs the whole suite.
# `make lint` checks the house rules (CONTRIBUTING.md): ruff, mypy and the layering contracts.
# Both create .venv and install what they need on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: up test lint format bench install clean test-tools

up: $(INSTALLED)
	$(BIN)/csm up

test: $(INSTALLED) test-tools
	$(BIN)/pytest

# Programs the tests run as real peers, installed here from Debian's packages when missing: chromium for
# the console's browser tests (Playwright downloads no browser of its own), a CJK font so the screenshots
# show the Chinese pages, and Dovecot, the IMAP server the mail polling tests start on a loopback port.
TEST_PACKAGES := chromium fonts-wqy-zenhei dovecot-imapd
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
test-tools:
	@dpkg -s $(TEST_PACKAGES) >/dev/null 2>&1 || { \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEST_PACKAGES) >/dev/null; } || \
		echo "could not install $(TEST_PACKAGES): the browser and IMAP tests skip (and the browser ones fail in CI)"

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Applies the formatter and the safe fixes; `make lint` then says what is left.
format: $(INSTALLED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# make bench NAME=<benchmark> ARGS="..."; without NAME, lists the benchmarks.
bench: $(INSTALLED)
	$(BIN)/python -m bench $(NAME) $(ARGS)

install: $(INSTALLED)

$(INSTALLED): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "csm needs Python 3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
