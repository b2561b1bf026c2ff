#!/usr/bin/env bash
# Creates or reuses the project's isolated environment in .venv and prints its Python.
# Sourced by tools/demo.sh and tools/test.sh; safe to run on its own.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo/.venv"

find_python312() {
    local candidate
    for candidate in "${VSDAIN_PYTHON:-}" python3.12; do
        if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    # pyenv keeps versions under $PYENV_ROOT/versions even when 3.12 is not the default.
    local root="${PYENV_ROOT:-$HOME/.pyenv}"
    for candidate in "$root"/versions/3.12*/bin/python3.12; do
        if [ -x "$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if [ ! -x "$venv/bin/python" ]; then
    if ! base=$(find_python312); then
        echo "vsdain: Python 3.12 not found (VapourSynth R81 needs it)." >&2
        echo "  Install it (e.g. 'pyenv install 3.12') or set VSDAIN_PYTHON=/path/to/python3.12." >&2
        exit 1
    fi
    echo "vsdain: creating $venv with $base" >&2
    "$base" -m venv "$venv"
fi

# Reinstall only when the declared dependencies (setup.cfg) or the build settings
# (pyproject.toml) change.
stamp="$venv/.vsdain-installed"
want=$(cd "$repo" && sha256sum setup.cfg pyproject.toml | sha256sum | cut -d" " -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "vsdain: installing vsdain[dev,video] into $venv" >&2
    "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
    "$venv/bin/python" -m pip install --quiet -e "$repo[dev,video]" >&2
    # vspipe finds its Python through this per-installation configuration entry.
    "$venv/bin/vapoursynth" config >&2
    echo "$want" >"$stamp"
fi

echo "$venv/bin/python"
