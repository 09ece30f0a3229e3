#!/usr/bin/env bash
# The whole test suite: set-up, the Kubernetes control plane build (cached), then jest
# over the compiled tests. Ends with the line "N passed, N failed".
# Extra arguments go to jest, e.g. `bash scripts/test.sh dist/agent`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
if [ -x lab/cluster/build.sh ]; then
  bash lab/cluster/build.sh
fi

results=$(mktemp /tmp/vipfarm-jest.XXXXXX.json)
rc=0
node --experimental-vm-modules node_modules/jest/bin/jest.js --runInBand --forceExit \
  --json --outputFile="$results" "$@" || rc=$?
node scripts/jest-summary.mjs "$results" || rc=1
rm -f "$results"
exit "$rc"
