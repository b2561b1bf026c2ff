#!/usr/bin/env bash
# Sets up (or reuses) .venv, then runs the test suite. Other arguments go to pytest.
#   tools/test.sh           the full suite (what .ci/run runs): the fast tier first, for a quick
#                           verdict, then the slow tier; together every test, each run once
#   tools/test.sh --fast    the fast tier only: every test not marked slow, each within 5 s
#   tools/test.sh ARGS...   pytest ARGS (a file, -k, -m ...) in one run
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=$("$repo/tools/env.sh")
cd "$repo"
fast=false
arguments=()
for argument in "$@"; do
    if [[ "$argument" == "--fast" ]]; then
        fast=true
    else
        arguments+=("$argument")
    fi
done
if $fast; then
    # The time guard of tests/conftest.py (its TIME_LIMIT); an explicit value wins, 0 is off.
    export VSDAIN_TEST_TIME_LIMIT=${VSDAIN_TEST_TIME_LIMIT:-5}
    exec "$python" -m pytest -m "not slow" ${arguments[@]+"${arguments[@]}"}
fi
if [[ ${#arguments[@]} -gt 0 ]]; then
    exec "$python" -m pytest "${arguments[@]}"
fi
# The full suite as its two tiers, each listing its slowest tests (to see the fast tier drift
# without timing it: tests/conftest.py says why CI has no guard); the second runs even when the
# first failed, so that one run reports every failure.
status=0
echo "tools/test.sh: the fast tier (not slow)" >&2
"$python" -m pytest -m "not slow" --durations=10 || status=$?
echo "tools/test.sh: the slow tier" >&2
"$python" -m pytest -m slow --durations=10 || status=$((status ? status : $?))
exit "$status"
