"""Rendering whole videos through vsdain: chunked, resumable, on many workers (Ray).

:func:`render` is the entry point; the modules are the pieces: :mod:`.graph` (the node to
render), :mod:`.options` (the filter's options and their checks), :mod:`.timestamps` (a
file's frame times, variable frame rate), :mod:`.plan` (chunk boundaries), :mod:`.encode`
(PyAV), :mod:`.concat` (remuxing chunks and audio), :mod:`.workers` (in process or Ray
tasks), :mod:`.state` (the work folder and resume), :mod:`.progress` (stderr).
"""

from .job import RenderError, render
from .progress import RenderSummary
from .workers import ChunkError

__all__ = ["ChunkError", "RenderError", "RenderSummary", "render"]
