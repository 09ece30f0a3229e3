#!/usr/bin/env bash
# The whole test suite: set-up, the Kubernetes control plane build (cached), lint
# (eslint.config.js), then jest over the compiled tests. Ends with the line
# "N passed, N failed"; every lint error counts as one failed check there.
# Extra arguments go to jest, e.g. `bash scripts/test.sh dist/agent`.
# VIPFARM_LINT=0 skips the lint (said so in the summary line), for quick partial runs.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
if [ -x lab/cluster/build.sh ]; then
  bash lab/cluster/build.sh
fi

results=$(mktemp /tmp/vipfarm-jest.XXXXXX.json)
lint=$(mktemp /tmp/vipfarm-lint.XXXXXX.json)
rc=0
if [ "${VIPFARM_LINT:-1}" = 0 ]; then
  echo '[test] lint skipped (VIPFARM_LINT=0)'
  echo skipped > "$lint"
else
  echo '[test] lint: eslint .'
  # Findings are printed by jest-summary.mjs from the JSON; eslint's own exit code is 1 for
  # findings and 2 for a broken config, and both must fail the run.
  node_modules/.bin/eslint . --format json --output-file "$lint" || rc=$?
  [ -s "$lint" ] || echo '{"crashed": true}' > "$lint"
fi
node --experimental-vm-modules node_modules/jest/bin/jest.js --runInBand --forceExit \
  --json --outputFile="$results" "$@" || rc=$?
node scripts/jest-summary.mjs "$results" --lint "$lint" || rc=1
rm -f "$results" "$lint"
exit "$rc"
