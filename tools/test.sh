#!/usr/bin/env bash
# Sets up (or reuses) .venv, then runs the whole test suite. Extra arguments go to pytest.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=$("$repo/tools/env.sh")
cd "$repo"
exec "$python" -m pytest "$@"
