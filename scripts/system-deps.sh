#!/usr/bin/env bash
# Installs the Debian packages the test suite uses, where we can (root with apt):
#   chromium   - the browser tests (tests/browser) drive it through playwright;
#   bubblewrap - the sandbox of the instructor's autograde.
# Where we cannot, the tests that need them skip and say why.
set -u
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing ${missing[*]} with apt-get ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq "${missing[@]}" >/dev/null \
    || echo "apt-get could not install ${missing[*]}; the tests that need them will be skipped."
else
  echo "Not root or no apt-get: ${missing[*]} missing; the tests that need them will be skipped."
fi
exit 0
