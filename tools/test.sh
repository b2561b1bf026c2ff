#!/usr/bin/env bash
# Sets up (or reuses) .venv, then runs the test suite. Extra arguments go to pytest.
#   tools/test.sh           the full suite (what .ci/run runs)
#   tools/test.sh --fast    the fast tier: every test not marked slow, each within 5 s
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=$("$repo/tools/env.sh")
cd "$repo"
if [[ "${1:-}" == "--fast" ]]; then
    shift
    export VSDAIN_TEST_TIME_LIMIT=${VSDAIN_TEST_TIME_LIMIT:-5}
    exec "$python" -m pytest -m "not slow" "$@"
fi
exec "$python" -m pytest "$@"
