#!/usr/bin/env bash
# Sets up (or reuses) .venv, then interpolates a short stretch of a real clip through vspipe
# and writes demo-output/interpolated.y4m plus demo-output/before_after.png.
# Options go to tools/demo.py (--help lists them).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=$("$repo/tools/env.sh")
# No cd: relative paths (--clip, --out) and the commands the demo suggests are the caller's.
exec "$python" "$repo/tools/demo.py" "$@"
