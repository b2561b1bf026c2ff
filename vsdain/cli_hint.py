"""How to spell a ``vsdain`` command so that it runs from where the user is.

Messages that tell the user to run something (fetch the weights, resume a training run) use
:func:`command_hint`: ``vsdain download`` when the ``vsdain`` script on ``PATH`` belongs to
the running installation, else the running interpreter, e.g.
``/work/main/.venv/bin/python -m vsdain download``, which works whether or not a virtual
environment is activated.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

SCRIPT = "vsdain"


def command_hint(*arguments: str | os.PathLike[str]) -> str:
    """A shell command line running ``vsdain ARGUMENTS...``, each word quoted with shlex."""
    return shlex.join([*command_prefix(), *(os.fspath(argument) for argument in arguments)])


def command_prefix() -> list[str]:
    """``["vsdain"]`` when that script on ``PATH`` is this installation's, else
    ``[sys.executable, "-m", "vsdain"]``."""
    script = shutil.which(SCRIPT)
    if script is not None and _belongs_here(Path(script)):
        return [SCRIPT]
    return [os.path.abspath(sys.executable) if sys.executable else "python3", "-m", SCRIPT]


def _belongs_here(script: Path) -> bool:
    # A venv's python is often a symlink to the base interpreter, so both its own folder
    # and the environment's scripts folder count; the script itself may be a link too.
    interpreter = Path(sys.executable)
    scripts = "Scripts" if os.name == "nt" else "bin"
    homes = {
        interpreter.absolute().parent,
        interpreter.resolve().parent,
        (Path(sys.prefix) / scripts).absolute(),
    }
    return bool({script.absolute().parent, script.resolve().parent} & homes)
