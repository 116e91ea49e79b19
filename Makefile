# Two commands do all set-up on a fresh Debian/Ubuntu host (as root):
#   make demo   — a live demo call center on the embedded default (SQLite, lab Asterisk)
#   make test   — the whole suite, including the tests against a real Asterisk
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= config/callcenter.yaml
PYTEST_ARGS ?=

.PHONY: demo test unit lab-up lab-down sysdeps venv clean install uninstall

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

# Production install, as root, on a host with Debian's Asterisk (README "Production install"):
# the venv in /opt/callcenter/.venv (from this checkout), /etc/callcenter, Asterisk's part in
# /etc/asterisk/callcenter/ (#included by the site's files), the systemd unit; prints the next
# steps. Running it again changes nothing. DESTDIR=DIR installs into a scratch root instead (no
# user, no ownership, no venv, no systemctl). `make uninstall` (PURGE=1: the config and user too).
install:
ifeq ($(DESTDIR),)
	$(PYTHON) -m callcenter.install.venv --source $(CURDIR)
	/opt/callcenter/.venv/bin/callcenter install --source $(CURDIR)
else
	$(MAKE) venv
	$(BIN)/callcenter install --destdir $(DESTDIR) --source $(CURDIR)
endif

uninstall:
	$(PYTHON) -m callcenter.install.uninstall $(if $(DESTDIR),--destdir $(DESTDIR)) $(if $(PURGE),--purge)

# System packages: venv support, debootstrap (builds the lab Asterisk when the host has none),
# SIPp (sip-tester) for SIP-level tests, espeak-ng and sox for the AMD test corpus (flite,
# festival and festvox voices for its fresh split), Debian's Chromium for the browser tests
# (Playwright drives it; nothing downloads a browser), openssl for the provisioning HTTPS test's
# throw-away certificate, Debian's DAHDI tools (dahdi_cfg checks the rendered system.conf in the
# card tests; dahdi-source stands in for the kernel modules, which a test host needs no more than
# it can build them), systemd-analyze (the unit's verify/security tests), systemd-nspawn (the
# unit under a real systemd, in a container) and ip (loopback up in a test's private network
# namespace).
# Installed only when missing.
sysdeps:
	@if ! command -v dahdi_cfg >/dev/null && [ ! -x /usr/sbin/dahdi_cfg ]; then \
	  echo "installing: dahdi (tools only)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    dahdi dahdi-source; \
	fi
	@missing=""; \
	$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || missing="$$missing python3-venv"; \
	command -v debootstrap >/dev/null || command -v asterisk >/dev/null || missing="$$missing debootstrap"; \
	command -v sipp >/dev/null || missing="$$missing sip-tester"; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	command -v sox >/dev/null || missing="$$missing sox"; \
	for p in asterisk-core-sounds-en-wav asterisk-core-sounds-fr-wav asterisk-core-sounds-es-wav \
	         asterisk-core-sounds-it-wav asterisk-core-sounds-ru-wav asterisk-prompt-fr-armelle \
	         asterisk-prompt-es-co asterisk-prompt-it-menardi-wav \
	         flite festival festvox-us-slt-hts festvox-kallpc16k festvox-kdlpc16k festvox-ru \
	         festvox-suopuhe-lj festvox-suopuhe-mv festvox-czech-dita festvox-czech-machac \
	         festvox-ca-ona-hts festvox-italp16k festvox-itapc16k; do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; \
	done; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v systemd-analyze >/dev/null || missing="$$missing systemd"; \
	command -v systemd-nspawn >/dev/null || missing="$$missing systemd-container"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
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
