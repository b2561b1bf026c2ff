"""The distribution as pip installs it: metadata declared in setup.cfg, a wheel that carries
the CUDA kernel sources and the weights-mirror list, and requirements equal to the declared
ones.

The wheel is built offline (``--no-build-isolation``: setuptools and wheel come with the dev
extra) from a copy of the files the build reads, so that no ``build/`` folder is left in the
checkout, whose stale files would end up in the next wheel built there. It is installed
without its dependencies into a fresh virtual environment and inspected from that
environment's own interpreter, started isolated (``-I``) outside the checkout, so that only the
installed copy can answer.
"""

from __future__ import annotations

import configparser
import json
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "vsdain"
# Everything the build reads besides the package itself.
BUILD_INPUTS = ("pyproject.toml", "setup.cfg", "README.md")
# Package data: the kernel sources CuPy compiles at run time and the list of weights mirrors.
PACKAGE_DATA_PATTERNS = ("ops/*.cu", "ops/*.cuh", "data/manifest.tsv")
STEP_TIMEOUT_S = 120

# Run by the installed environment's interpreter: what its distribution holds.
INSPECT = """
import importlib.metadata as metadata
import importlib.resources as resources
import json
import sys

names = json.loads(sys.argv[1])
distribution = metadata.distribution("vsdain")
package = resources.files("vsdain")
print(json.dumps({
    "location": str(distribution.locate_file("vsdain")),
    "requires": metadata.requires("vsdain") or [],
    "recorded": [str(path) for path in distribution.files or []],
    "contents": {name: package.joinpath(name).read_text(encoding="utf-8") for name in names},
    "scripts": [entry.value for entry in distribution.entry_points if entry.name == "vsdain"],
}))
"""


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=STEP_TIMEOUT_S, check=False
    )
    shown = " ".join(command[:6]) + (" ..." if len(command) > 6 else "")
    assert result.returncode == 0, f"{shown}: exit {result.returncode}\n{result.stderr}"
    return result


def _declared() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg", encoding="utf-8")
    return config


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def declared_requirements() -> list[str]:
    """setup.cfg's install_requires and extras_require, spelled as the wheel's metadata spells
    them (``req; extra == "name"``)."""
    config = _declared()
    requirements = _lines(config["options"]["install_requires"])
    for extra, value in config["options.extras_require"].items():
        requirements += [f'{requirement}; extra == "{extra}"' for requirement in _lines(value)]
    return requirements


def package_data_files() -> list[str]:
    """The checkout's kernel sources and manifest, relative to the package folder."""
    return sorted(
        path.relative_to(PACKAGE).as_posix()
        for pattern in PACKAGE_DATA_PATTERNS
        for path in PACKAGE.glob(pattern)
    )


def test_pyproject_holds_no_project_table():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "project" not in pyproject
    assert pyproject["build-system"]["build-backend"] == "setuptools.build_meta"
    assert set(pyproject["tool"]) >= {"pytest", "ruff"}


def test_setup_cfg_declares_the_package_data_and_the_command():
    config = _declared()
    assert sorted(_lines(config["options.package_data"]["vsdain"])) == sorted(PACKAGE_DATA_PATTERNS)
    assert _lines(config["options.entry_points"]["console_scripts"]) == [
        "vsdain = vsdain.commands:main"
    ]
    dev = _lines(config["options.extras_require"]["dev"])
    assert any(line.startswith("setuptools") for line in dev)
    assert "wheel" in dev


def test_package_data_exists_in_the_checkout():
    files = package_data_files()
    assert "data/manifest.tsv" in files
    assert {"ops/correlation.cu", "ops/projection.cu", "ops/warping.cu"} <= set(files)
    assert any(name.endswith(".cuh") for name in files)


def test_installed_wheel_has_kernels_manifest_and_declared_requirements(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(PACKAGE, source / "vsdain", ignore=shutil.ignore_patterns("__pycache__"))

    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)],
        tmp_path,
    )
    (wheel,) = wheels.glob("vsdain-*.whl")

    environment = tmp_path / "env"
    venv.EnvBuilder(with_pip=False).create(environment)
    python = environment / "bin" / "python"
    _run(
        [*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)], tmp_path
    )

    names = package_data_files()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    found = json.loads(_run([str(python), "-I", "-c", INSPECT, json.dumps(names)], outside).stdout)

    assert Path(found["location"]).is_relative_to(environment)
    for name in names:
        assert f"vsdain/{name}" in found["recorded"], name
        assert found["contents"][name] == (PACKAGE / name).read_text(encoding="utf-8"), name
    assert sorted(found["requires"]) == sorted(declared_requirements())
    assert found["scripts"] == ["vsdain.commands:main"]
