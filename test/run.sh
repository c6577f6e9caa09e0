#!/usr/bin/env bash
# Runs every test suite on the compiled tests (npm test builds first) and prints each suite's time.
# Suites: unit (pure code, fast), integration (real sockets on loopback).
set -uo pipefail
cd "$(dirname "$0")/.."

suites=("$@")
if [ ${#suites[@]} -eq 0 ]; then suites=(unit integration); fi

status=0
for suite in "${suites[@]}"; do
  shopt -s nullglob globstar
  files=(dist/test/"$suite"/**/*.test.js)
  if [ ${#files[@]} -eq 0 ]; then
    echo "suite $suite: no test files" >&2
    status=1
    continue
  fi
  start=$(date +%s)
  node --test --test-timeout=120000 --test-concurrency=1 --test-reporter=spec "${files[@]}"
  rc=$?
  end=$(date +%s)
  echo "suite $suite: exit $rc in $((end - start)) s"
  if [ $rc -ne 0 ]; then status=$rc; fi
done
exit $status
