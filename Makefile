# Горячая линия: two commands. `make run` starts the bot; `make test` runs the suite.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test setup models lint bench clean

run: $(STAMP)
	@$(BIN)/voicebot models fetch || echo "voicebot: models not fetched (see above); starting degraded"
	$(BIN)/voicebot serve

test: $(STAMP) test-system-deps
	$(BIN)/ruff check services tests bench
	$(BIN)/pytest

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

# Debian packages the tests use (sox, Chromium, Russian Asterisk prompts); skipped when present.
.PHONY: test-system-deps
test-system-deps:
	@bash tests/install-system-deps.sh

models: $(STAMP)
	$(BIN)/voicebot models fetch

lint: $(STAMP)
	$(BIN)/ruff check services tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
