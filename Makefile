# Two commands do all set-up on a fresh Debian/Ubuntu host (as root):
#   make demo   — a live demo call center on the embedded default (SQLite, lab Asterisk)
#   make test   — the whole suite, including the tests against a real Asterisk
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= config/callcenter.yaml
PYTEST_ARGS ?=

.PHONY: demo test unit lab-up lab-down sysdeps venv clean

demo: venv
	$(BIN)/callcenter demo --config $(CONFIG)

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

unit: venv
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

lab-up: venv
	$(BIN)/callcenter lab up --config $(CONFIG)

lab-down: venv
	$(BIN)/callcenter lab down

venv: $(VENV)/.installed

# System packages: venv support, debootstrap (builds the lab Asterisk when the host has none),
# SIPp (sip-tester) for SIP-level tests, espeak-ng and sox for the AMD test corpus, Debian's
# Chromium for the browser tests (Playwright drives it; nothing downloads a browser).
# Installed only when missing.
sysdeps:
	@missing=""; \
	$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || missing="$$missing python3-venv"; \
	command -v debootstrap >/dev/null || command -v asterisk >/dev/null || missing="$$missing debootstrap"; \
	command -v sipp >/dev/null || missing="$$missing sip-tester"; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	command -v sox >/dev/null || missing="$$missing sox"; \
	for p in asterisk-core-sounds-en-wav asterisk-core-sounds-fr-wav asterisk-core-sounds-es-wav \
	         asterisk-core-sounds-it-wav asterisk-core-sounds-ru-wav asterisk-prompt-fr-armelle \
	         asterisk-prompt-es-co asterisk-prompt-it-menardi-wav; do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; \
	done; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(VENV)/.installed: pyproject.toml | sysdeps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache config/*.sqlite3*
