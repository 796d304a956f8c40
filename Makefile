# Горячая линия: two commands. `make run` starts the bot; `make test` runs the suite.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TESTSTAMP := $(VENV)/.installed-test

.PHONY: run test suite setup setup-test test-system-deps models lint bench clean

# Models that cannot be fetched (no network, say) do not stop the bot: it starts degraded
# (eSpeak NG voice; typed and DTMF input when there is no speech recognition model). The static
# graph (about half the ASR CPU per call) is compiled where OpenFst's tools are installed.
run: $(STAMP)
	@$(BIN)/voicebot models fetch || echo "make run: models not installed (reason above); starting degraded" >&2
	@$(BIN)/voicebot models compile-graph --if-possible
	$(BIN)/voicebot serve

test: $(TESTSTAMP) test-system-deps
	@$(MAKE) --no-print-directory suite

# Lint (ruff, mypy) and tests without the set-up. pytest exits 5 when it collected no tests: that must fail
# loudly, never pass as green.
suite:
	$(BIN)/ruff check services tests bench
	$(BIN)/mypy
	@$(BIN)/pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

setup: $(STAMP)

setup-test: $(TESTSTAMP)

# Runtime only: `make run` never installs test tools.
$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || { \
	  echo "make: Python 3.11 is needed as '$(PYTHON)' (Debian/Ubuntu: apt install python3.11 python3.11-venv; or make PYTHON=/path/to/python3.11)" >&2; exit 1; }
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

$(TESTSTAMP): $(STAMP) requirements-test.lock
	$(BIN)/pip install --quiet -r requirements.lock -r requirements-test.lock
	@touch $@

# Debian packages the tests drive (sox, espeak-ng, Chromium, Russian Asterisk prompts).
test-system-deps:
	@bash tests/install-system-deps.sh

models: $(STAMP)
	$(BIN)/voicebot models fetch

lint: $(TESTSTAMP)
	$(BIN)/ruff check services tests bench
	$(BIN)/mypy

# Every benchmark in bench/, one after another; each writes bench/results/<name>.md.
bench: $(TESTSTAMP)
	@for f in bench/[a-z]*.py; do m=$$(basename $$f .py); echo "== bench.$$m"; \
	  $(BIN)/python -m bench.$$m || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
