#!/usr/bin/env bash
# Install what the browser tests need: Debian's Chromium (+ a Japanese font for readable screenshots),
# Playwright's Python client and Gradio.  Never fails the caller: when something cannot be installed it
# says why and exits 0, and the tests that need it skip with a reason.
# We use the system Chromium; `playwright install` (its own browser download) is not needed.
set -u

say() { echo "install_browser: $*"; }
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
missing=()

if [ -x /usr/bin/chromium ]; then
    say "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null | head -n1)"
elif command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else SUDO="NONE"; fi
    fi
    if [ "$SUDO" = "NONE" ]; then
        say "not root and no sudo: cannot apt-get install chromium"
        missing+=(chromium)
    else
        export DEBIAN_FRONTEND=noninteractive
        if $SUDO apt-get update -qq >"$LOG" 2>&1 \
            && $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-ipafont-gothic >>"$LOG" 2>&1; then
            say "installed $(/usr/bin/chromium --version 2>/dev/null | head -n1)"
        else
            say "apt-get install chromium failed (no network, or no 'chromium' package on this distribution):"
            tail -n 3 "$LOG" | sed 's/^/    /'
            missing+=(chromium)
        fi
    fi
else
    say "no apt-get here: install Chromium yourself (or set MANGA2MUSIC_CHROMIUM=/path/to/chromium)"
    missing+=(chromium)
fi

PY="${PYTHON:-python3}"
if "$PY" -m pip install -q playwright "gradio>=5" >"$LOG" 2>&1; then
    say "installed $("$PY" -c 'import playwright, gradio, importlib.metadata as m; print("playwright", m.version("playwright"), "+ gradio", gradio.__version__)' 2>/dev/null)"
else
    say "pip install playwright gradio failed:"
    tail -n 3 "$LOG" | sed 's/^/    /'
    missing+=(playwright/gradio)
fi

if [ ${#missing[@]} -gt 0 ]; then
    say "missing: ${missing[*]}; the browser tests will be skipped (with this reason) instead of failing"
else
    say "ready: the browser tests will run"
fi
exit 0
