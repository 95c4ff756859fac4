#!/usr/bin/env sh
# Debian's chromium for the browser tests (Playwright drives it; its own browser download is not
# reachable everywhere). Does nothing when a chromium is already on PATH.
set -eu
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
  echo "The browser tests need chromium: install it (apt-get install chromium) and run again." >&2
  exit 1
fi
echo "Installing Debian's chromium for the browser tests (once)..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
