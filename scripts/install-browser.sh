#!/usr/bin/env bash
# Installs Chromium (and its driver) for the browser test, idempotently. Debian/Ubuntu; needs root or sudo.
# The Python side is the `playwright` package (dev dependency); `playwright install` is never needed:
# the tests launch /usr/bin/chromium directly.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  echo "chromium present: $(/usr/bin/chromium --version 2>/dev/null | head -n 1)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-browser: need root (or sudo) to apt-get install chromium" >&2; exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-browser: no apt-get here; install Chromium so that /usr/bin/chromium exists" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core fonts-noto-color-emoji >/dev/null
echo "chromium installed: $(/usr/bin/chromium --version 2>/dev/null | head -n 1)"
