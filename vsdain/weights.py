"""Where the DAIN weights live, and loading them into :class:`vsdain.model.DAIN`.

The released checkpoint is ``best.pth``: a plain state dict of 954 tensors. It is looked for in

1. ``$VSDAIN_WEIGHTS_DIR``, if set (and then nowhere else);
2. ``<checkout>/models/``, when vsdain runs from a source checkout;
3. the user cache, ``$XDG_CACHE_HOME/vsdain`` or ``~/.cache/vsdain``.

``vsdain download`` writes to the first of these.
"""

from __future__ import annotations

import functools
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .cli_hint import command_hint

if TYPE_CHECKING:
    from .model import DAIN

WEIGHTS_FILENAME = "best.pth"
WEIGHTS_DIR_ENV = "VSDAIN_WEIGHTS_DIR"

# A source checkout has the project file and the weights folder beside the package; an
# installed copy (site-packages) has neither.
_CHECKOUT_MARKERS = ("pyproject.toml", "models")
_PACKAGE_DIR = Path(__file__).resolve().parent

# nn.DataParallel saves keys as "module.<key>"; MegaDepth's released files have it too.
_DATA_PARALLEL_PREFIX = "module."
# The entry of a {"state_dict": ...} file naming the flow projection the network was trained
# with; absent in the released best.pth (depth-aware).
PROJECTION_KEY = "projection"
# How many offending keys an error message lists before it only counts the rest.
_MAX_LISTED = 5


class WeightsError(ValueError):
    """A weights file that cannot be read, or whose tensors do not fit the DAIN network.

    reason: what is wrong with the file, without the advice on what to do about it (a
    downloader that has already deleted the file reports this instead of the message).
    """

    def __init__(self, message: str, *, reason: str | None = None):
        super().__init__(message)
        self.reason = message if reason is None else reason


class WeightsNotFoundError(FileNotFoundError):
    """No weights file where one was looked for. ``searched`` holds the paths tried."""

    def __init__(self, message: str, searched: list[Path]):
        super().__init__(message)
        self.searched = searched


def checkout_dir() -> Path | None:
    """The source checkout vsdain runs from, or None when it runs from an installed copy."""
    root = _PACKAGE_DIR.parent
    project, models = (root / name for name in _CHECKOUT_MARKERS)
    return root if project.is_file() and models.is_dir() else None


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/vsdain``, or ``~/.cache/vsdain`` when that variable is unset."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home).expanduser() / "vsdain"


def weights_search_dirs() -> list[Path]:
    """The folders searched for ``best.pth``, in order (see the module docstring)."""
    override = os.environ.get(WEIGHTS_DIR_ENV)
    if override:
        return [Path(override).expanduser()]
    checkout = checkout_dir()
    dirs = [checkout / "models"] if checkout is not None else []
    dirs.append(user_cache_dir())
    return dirs


def default_download_dir() -> Path:
    """Where ``vsdain download`` saves ``best.pth`` unless told otherwise."""
    return weights_search_dirs()[0]


def find_weights(path: str | os.PathLike[str] | None = None) -> Path:
    """The weights file to load.

    path: a file, a folder holding ``best.pth``, or None to search
    :func:`weights_search_dirs`. Raises :class:`WeightsNotFoundError`, whose message says
    where vsdain looked and how to get the file.
    """
    if path is not None:
        candidate = Path(path).expanduser()
        if candidate.is_dir():
            candidate = candidate / WEIGHTS_FILENAME
        if candidate.is_file():
            return candidate
        raise WeightsNotFoundError(
            f"DAIN weights not found at {candidate}. Run `{command_hint('download')}` to fetch "
            f"{WEIGHTS_FILENAME}, or pass the path of a file you already have.",
            [candidate],
        )
    searched = [folder / WEIGHTS_FILENAME for folder in weights_search_dirs()]
    for candidate in searched:
        if candidate.is_file():
            return candidate
    looked = "\n".join(f"  {candidate}" for candidate in searched)
    raise WeightsNotFoundError(
        f"DAIN weights ({WEIGHTS_FILENAME}) not found. Looked in:\n{looked}\n"
        f"Run `{command_hint('download')}` to fetch them, or put a {WEIGHTS_FILENAME} you obtained "
        f"by hand at {searched[0]} (or in a folder named by ${WEIGHTS_DIR_ENV}).",
        searched,
    )


def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a checkpoint on the CPU, without running any pickled code (``weights_only``).

    Accepts a plain state dict or a dict with a ``'state_dict'`` entry, strips a
    DataParallel ``module.`` prefix, and adds any missing BatchNorm ``num_batches_tracked``
    counters (as 0: they have no effect in eval mode, and files saved before PyTorch 0.4.1
    lack them). Raises :class:`WeightsError` for a file that is unreadable or not a state dict.
    """
    return _read_weights(Path(path))[0]


def _read_weights(path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """(state dict, projection) of a weights file: see :func:`load_state_dict_file`. The
    projection is the file's ``'projection'`` entry, which vsdain's training writes for a
    network trained without depth (DA-None), else ``"depth"`` (the released model)."""
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        refused = _refused_global(str(error))
        if refused is not None:
            raise _runs_code(path, refused) from None
        raise _unreadable(path, _unpickler_detail(error)) from None
    except Exception as error:
        # On bytes that are not a checkpoint torch's readers fail in many ways (IndexError,
        # KeyError, struct.error, AssertionError, RuntimeError, ...): all mean "unreadable".
        raise _unreadable(path, f"{type(error).__name__}: {_first_line(str(error))}") from None
    try:
        return _as_state_dict(path, loaded)
    except WeightsError:
        raise
    except Exception as error:  # e.g. keys that cannot be compared or hashed
        raise _unreadable(path, f"{type(error).__name__}: {_first_line(str(error))}") from None


def _as_state_dict(path: Path, loaded: object) -> tuple[dict[str, torch.Tensor], str]:
    from .model.dain import PROJECTIONS

    projection = "depth"
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        projection = loaded.get(PROJECTION_KEY, projection)
        if projection not in PROJECTIONS:
            raise WeightsError(
                f"weights file {path}: unknown {PROJECTION_KEY!r} entry {projection!r}; "
                f"expected one of {', '.join(PROJECTIONS)}"
            )
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping):
        raise WeightsError(
            f"weights file {path} holds a {type(loaded).__name__}, not a state dict (a dict "
            "of tensors)."
        )
    not_tensors = [str(key) for key, value in loaded.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise WeightsError(
            f"weights file {path} is not a state dict: it has entries that are not tensors "
            f"({_count(not_tensors, 'entry', 'entries')}: {_listing(not_tensors)})."
        )

    unusable = [
        str(key)
        for key, value in loaded.items()
        if value.is_meta or value.layout != torch.strided or value.is_quantized
    ]
    if unusable:
        raise WeightsError(
            f"weights file {path} is not a state dict of plain tensors: "
            f"{_count(unusable, 'entry', 'entries')} without data or in another layout "
            f"({_listing(unusable)})."
        )
    state_dict = {
        str(key).removeprefix(_DATA_PARALLEL_PREFIX): value for key, value in loaded.items()
    }
    for key in list(state_dict):
        if key.endswith(".running_mean"):
            counter = key.removesuffix("running_mean") + "num_batches_tracked"
            state_dict.setdefault(counter, torch.tensor(0, dtype=torch.long))
    return state_dict, projection


def check_layout(
    state_dict: Mapping[str, torch.Tensor], model: torch.nn.Module | None = None
) -> None:
    """Raise :class:`WeightsError` unless ``state_dict`` has exactly the keys and shapes of
    ``model.state_dict()`` (default: :class:`vsdain.model.DAIN`'s, from a network built once
    on the meta device, without memory or initialisation).

    The message counts and lists missing keys, unexpected keys and shape mismatches.
    """
    if model is None:
        expected = dict(_dain_shapes())
    else:
        expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    found = {key: tuple(value.shape) for key, value in state_dict.items()}

    missing = [key for key in expected if key not in found]
    unexpected = [key for key in found if key not in expected]
    mismatched = [
        f"{key}: expected {_shape(expected[key])}, found {_shape(found[key])}"
        for key in expected
        if key in found and found[key] != expected[key]
    ]
    problems = []
    if missing:
        problems.append(f"{_count(missing, 'missing key')} ({_listing(missing)})")
    if unexpected:
        problems.append(f"{_count(unexpected, 'unexpected key')} ({_listing(unexpected)})")
    if mismatched:
        problems.append(f"{_count(mismatched, 'shape mismatch')} ({_listing(mismatched)})")
    if problems:
        raise WeightsError(
            f"the weights do not match the DAIN network ({len(expected)} tensors expected, "
            f"{len(found)} found): " + "; ".join(problems) + "."
        )


def load_model(
    path: str | os.PathLike[str] | None = None,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> DAIN:
    """A :class:`vsdain.model.DAIN` with the released weights, in eval mode.

    path: as for :func:`find_weights` (None searches the default folders). A network that
    vsdain trained without depth (``train --depth none``) gets the averaging projection it
    was trained with; its files say so.
    device, dtype: where the parameters end up; dtype casts floating-point tensors only,
    so the BatchNorm counters stay int64. Gradients stay enabled: run under
    ``torch.inference_mode()``.
    Raises :class:`WeightsNotFoundError` or :class:`WeightsError`.
    """
    from .model import DAIN

    weights_path = find_weights(path)
    state_dict, projection = _read_weights(weights_path)
    try:
        check_layout(state_dict)
    except WeightsError as error:
        raise WeightsError(f"{weights_path}: {error}") from None
    # Built without memory and filled with the file's tensors (assign=True): the reference
    # initialisation would only be overwritten.
    with torch.device("meta"):
        model = DAIN(projection=projection)
    try:
        model.load_state_dict(state_dict, strict=True, assign=True)
    except (RuntimeError, TypeError, ValueError) as error:  # e.g. integers for a weight
        raise WeightsError(
            f"{weights_path}: the tensors do not fit the DAIN network ({_first_line(str(error))})"
        ) from None
    return model.to(device=device, dtype=dtype).eval()


@functools.cache
def _dain_shapes() -> tuple[tuple[str, tuple[int, ...]], ...]:
    """(key, shape) of every entry of :class:`vsdain.model.DAIN`'s state dict, in order.
    The projection changes no tensor, so one network answers for both."""
    from .model import DAIN

    with torch.device("meta"):
        model = DAIN()
    return tuple((key, tuple(value.shape)) for key, value in model.state_dict().items())


def _unreadable(path: Path, detail: str) -> WeightsError:
    reason = f"not a readable PyTorch checkpoint; probably truncated or corrupt ({detail})"
    return WeightsError(
        f"cannot read the weights file {path} ({_file_size(path)}) as a PyTorch checkpoint; "
        f"it is probably truncated or corrupt. Delete it and re-download it with "
        f"`{command_hint('download')}`. ({detail})",
        reason=reason,
    )


def _runs_code(path: Path, name: str) -> WeightsError:
    reason = (
        f"it tries to run code when loaded ({name}); it was refused and nothing in it ran. "
        f"A weights file holds only tensors: this one holds objects other than tensors, so it "
        f"is not a DAIN state dict"
    )
    return WeightsError(
        f"weights file {path}: {reason}. Do not load it by other means; get the weights from "
        f"a source you trust, e.g. `{command_hint('download')}`.",
        reason=reason,
    )


def _refused_global(text: str) -> str | None:
    """The import the weights-only unpickler refused (``posix.system``), or None when it
    failed for another reason. torch names it as ``GLOBAL module.name``."""
    found = re.search(r"\bGLOBAL\s+([\w.]+)", text)
    return found[1] if found else None


def _unpickler_detail(error: pickle.UnpicklingError) -> str:
    # torch wraps the unpickler's own complaint in several lines of general advice, some of
    # which (weights_only=False) must never reach a user holding a file of unknown origin.
    text = str(error)
    _, marker, rest = text.partition("WeightsUnpickler error:")
    lines = [
        line
        for line in (rest if marker else text).splitlines()
        if "weights_only" not in line and "torch.load" not in line
    ]
    return _first_line("\n".join(lines))


def _file_size(path: Path) -> str:
    try:
        return f"{path.stat().st_size:,} bytes"
    except OSError:
        return "size unknown"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "no details"


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return f"{shown}, and {more} more" if more > 0 else shown


def _count(items: list[str], singular: str, plural: str | None = None) -> str:
    if len(items) == 1:
        return f"1 {singular}"
    return f"{len(items)} {plural or singular + ('es' if singular.endswith('ch') else 's')}"


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(size) for size in shape) + ")" if shape else "scalar"
