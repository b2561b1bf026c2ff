"""Command line: ``python -m vsdain {info,download,evaluate,train,bench} ...``."""

import sys

from .commands import main

sys.exit(main())
