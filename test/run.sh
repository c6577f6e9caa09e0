#!/usr/bin/env bash
# Runs every test suite on the compiled tests (npm test builds first) and prints each suite's time.
# Suites: unit (pure code, fast), integration (real sockets on loopback, gRPC on `engine: http2`, the
# node:http2 fallback), integration-frames (every integration file with a gRPC listener again, on
# `engine: frames`, the default: the engine matrix; a file joins it by taking its engine from the
# grpcEngine()/grpcConfig() helpers).
set -uo pipefail
cd "$(dirname "$0")/.."

suites=("$@")
if [ ${#suites[@]} -eq 0 ]; then suites=(unit integration integration-frames reliability); fi

status=0
for suite in "${suites[@]}"; do
  shopt -s nullglob globstar
  engine=http2
  if [ "$suite" = integration-frames ]; then
    engine=frames
    mapfile -t files < <(grep -l -E 'grpcEngine\(|grpcConfig\(' dist/test/integration/*.test.js)
  else
    files=(dist/test/"$suite"/**/*.test.js)
  fi
  if [ ${#files[@]} -eq 0 ]; then
    echo "suite $suite: no test files" >&2
    status=1
    continue
  fi
  start=$(date +%s)
  FULCRUM_TEST_GRPC_ENGINE=$engine node --test --test-timeout=120000 --test-concurrency=1 --test-reporter=spec "${files[@]}"
  rc=$?
  end=$(date +%s)
  echo "suite $suite: exit $rc in $((end - start)) s"
  if [ $rc -ne 0 ]; then status=$rc; fi
done
exit $status
