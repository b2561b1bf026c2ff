"""No vsdain module builds a path above the package directory.

An installed copy has nothing beside ``vsdain/`` in site-packages, so a path such as
``Path(__file__).parents[3] / "shared"`` works in one checkout and nowhere else. Every module
is parsed with ``ast``; a path built from ``__file__`` (directly or through a name it was
assigned to) is followed through ``.parent``, ``.parents[n]``, ``os.path.dirname``, ``/ ".."``,
``joinpath`` and ``os.path.join``, and fails the test once it climbs out of the package. String
literals naming a parent folder (``"../"``, ``"/.."``) or the evaluation data beside a checkout
(``"shared/data"``) fail it too; a bare ``".."`` only does as part of such a path.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "vsdain"

# (module relative to the package, source of the expression): deliberate reaches above it.
ALLOWED = {
    # A source checkout is recognised by its project file and models/ folder beside the
    # package; an installed copy has neither and gets None.
    ("weights.py", "_PACKAGE_DIR.parent"),
}

# Calls that keep the path their first argument names.
SAME_PATH_CALLS = {
    "Path",
    "pathlib.Path",
    "PurePath",
    "os.path.abspath",
    "os.path.realpath",
    "os.path.normpath",
    "os.fspath",
    "str",
}
SAME_PATH_METHODS = {"resolve", "absolute", "expanduser"}
SUSPECT_STRINGS = ("../", "/..", "shared/data")


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


def _walk_parts(start: tuple[int, int], parts: list[ast.expr]) -> tuple[int, int] | None:
    height, highest = start
    for part in parts:
        if not (isinstance(part, ast.Constant) and isinstance(part.value, str)):
            return None
        for name in Path(part.value).parts:
            height += 1 if name == ".." else -1
            highest = max(highest, height)
    return height, highest


def _height(node: ast.expr, names: dict[str, tuple[int, int]]) -> tuple[int, int] | None:
    """(height, highest) of the path ``node`` builds, in folders above the module file: where
    it ends and the highest it reached on the way. None when it is not built from __file__."""
    match node:
        case ast.Name(id="__file__"):
            return 0, 0
        case ast.Name(id=name) if name in names:
            return names[name]
        case ast.Attribute(value=inner, attr="parent"):
            found = _height(inner, names)
            return None if found is None else (found[0] + 1, max(found[1], found[0] + 1))
        case ast.Subscript(
            value=ast.Attribute(value=inner, attr="parents"), slice=ast.Constant(value=int(n))
        ):
            found = _height(inner, names)
            return None if found is None else (found[0] + n + 1, max(found[1], found[0] + n + 1))
        case ast.BinOp(left=inner, op=ast.Div(), right=right):
            found = _height(inner, names)
            return None if found is None else _walk_parts(found, [right])
        case ast.Call(func=ast.Attribute(value=inner, attr=method), args=[]) if (
            method in SAME_PATH_METHODS
        ):
            return _height(inner, names)
        case ast.Call(func=ast.Attribute(value=inner, attr="joinpath"), args=parts):
            found = _height(inner, names)
            return None if found is None else _walk_parts(found, parts)
        case ast.Call(func=func, args=[first, *rest]):
            called = _dotted(func)
            found = _height(first, names)
            if found is None:
                return None
            if called in SAME_PATH_CALLS and not rest:
                return found
            if called == "os.path.dirname" and not rest:
                return found[0] + 1, max(found[1], found[0] + 1)
            if called == "os.path.join":
                return _walk_parts(found, rest)
    return None


def paths_above_package(source: str, module: str) -> list[str]:
    """``line: expression`` for each place in ``source`` (the module at ``module``, relative
    to the package folder, e.g. ``"benchmark/precision.py"``) that builds a path above the
    package; an empty list for a clean module."""
    tree = ast.parse(source)
    # Going up len(parts) folders from the file reaches the package folder; one more leaves it.
    limit = len(Path(module).parts)
    names: dict[str, tuple[int, int]] = {}
    assignments = [node for node in ast.walk(tree) if isinstance(node, ast.Assign | ast.AnnAssign)]
    for node in sorted(assignments, key=lambda node: (node.lineno, node.col_offset)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        found = None if node.value is None else _height(node.value, names)
        if found is not None and (module, ast.get_source_segment(source, node.value)) in ALLOWED:
            continue  # its uses are part of the allowed reach
        for target in targets:
            if isinstance(target, ast.Name) and found is not None:
                names[target.id] = found
    offences = {}
    for node in ast.walk(tree):
        # A name is caught where it was assigned, not at each use.
        if not isinstance(node, ast.expr) or isinstance(node, ast.Name):
            continue
        text = ast.get_source_segment(source, node) or ast.unparse(node)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if any(suspect in node.value for suspect in SUSPECT_STRINGS):
                offences.setdefault(node.lineno, f"{node.lineno}: {text}")
            continue
        found = _height(node, names)
        if found is not None and found[1] > limit and (module, text) not in ALLOWED:
            offences.setdefault(node.lineno, f"{node.lineno}: {text}")
    return [offences[line] for line in sorted(offences)]


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize(
    "path", MODULES, ids=[path.relative_to(PACKAGE).as_posix() for path in MODULES]
)
def test_module_builds_no_path_above_the_package(path):
    module = path.relative_to(PACKAGE).as_posix()
    assert paths_above_package(path.read_text(encoding="utf-8"), module) == []


def test_the_package_has_modules_to_check():
    assert len(MODULES) > 20
    assert PACKAGE / "benchmark" / "precision.py" in MODULES


# What vsdain/benchmark/precision.py held before --pair: the released output pair looked up in
# the evaluation data beside a source checkout.
OLD_PRECISION = '''"""The difference is measured on the released DAIN output pair
(``shared/data/dain-reference-output/0.png`` and ``1.png``, 640x360) at t = 0.5."""

from pathlib import Path

REFERENCE_PAIR_DIR = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "dain-reference-output"
)
REFERENCE_PAIR = ("0.png", "1.png")
'''


def test_the_old_reference_pair_lookup_is_caught():
    found = paths_above_package(OLD_PRECISION, "benchmark/precision.py")
    assert [line.split(":")[0] for line in found] == ["1", "7"]
    assert "parents[3]" in found[1]


@pytest.mark.parametrize(
    ("source", "module"),
    [
        ("from pathlib import Path\nROOT = Path(__file__).parent.parent\n", "weights.py"),
        ("from pathlib import Path\nROOT = Path(__file__).parents[1]\n", "weights.py"),
        ("import os\nDATA = os.path.join(os.path.dirname(__file__), '..', '..')\n", "a/b.py"),
        (
            "from pathlib import Path\nHERE = Path(__file__).parent\nUP = HERE / '..' / '..'\n",
            "a/b.py",
        ),
        (
            "from pathlib import Path\nHERE = Path(__file__).parent\nUP = HERE.joinpath('../..')\n",
            "a/b.py",
        ),
        (
            "from pathlib import Path\nTOP = Path(__file__).resolve().parents[2] / 'vsdain'\n",
            "a/b.py",
        ),
        ("FRAMES = 'shared/data/frames'\n", "a/b.py"),
    ],
    ids=[
        "parent-chain",
        "parents-index",
        "os-path-join",
        "through-a-name",
        "joinpath",
        "out-and-back-in",
        "data-literal",
    ],
)
def test_each_way_of_climbing_out_is_caught(source, module):
    assert paths_above_package(source, module) != []


@pytest.mark.parametrize(
    ("source", "module"),
    [
        ("from pathlib import Path\nKERNEL_DIR = Path(__file__).resolve().parent\n", "ops/x.py"),
        ("from pathlib import Path\nTOP = Path(__file__).parents[1] / 'data'\n", "ops/x.py"),
        (
            "from pathlib import Path\nDATA = Path(__file__).parent / 'data' / 'manifest.tsv'\n",
            "x.py",
        ),
        ("from pathlib import Path\nOUT = Path.cwd().parent / 'results'\n", "x.py"),
    ],
    ids=["own-folder", "package-folder", "data-file", "not-from-file"],
)
def test_paths_inside_the_package_pass(source, module):
    assert paths_above_package(source, module) == []
