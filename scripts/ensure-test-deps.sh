#!/usr/bin/env bash
# Installs what the tests need beyond npm packages, when missing: Debian's chromium (driven by
# playwright-core with executablePath, for the status page and chart tests) and openssl (test
# certificates). Needs root for apt-get; says what it installs.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing Debian packages for the tests: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "not root: install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
