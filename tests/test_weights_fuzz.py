"""Whatever bytes a weights file holds, reading it fails only with WeightsError (a vs.Error
naming the weights in the filter): text, random bytes, damaged checkpoints, odd zip files,
and pickles that try to run code."""

from __future__ import annotations

import io
import os
import random
import zipfile
from pathlib import Path

import pytest
import torch
import vapoursynth as vs
from filter_clips import moving_clip

import vsdain
from vsdain.weights import WeightsError, load_model, load_state_dict_file

TEXTS = [
    b"",
    b"rate limit exceeded",
    b"<!DOCTYPE html><html><body><h1>503 Service Unavailable</h1></body></html>",
    b'{"message": "API rate limit exceeded"}',
    b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n",
    b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 96238\n",
    b"\x80",
    b"\x80\x02",
    b"PK\x03\x04",
    b"PK\x05\x06" + bytes(18),
]


def small_checkpoint(legacy: bool) -> bytes:
    generator = torch.Generator().manual_seed(5)
    state = {
        "conv.weight": torch.randn(4, 3, 3, 3, generator=generator),
        "conv.bias": torch.randn(4, generator=generator),
        "bn.num_batches_tracked": torch.tensor(0),
    }
    buffer = io.BytesIO()
    torch.save(state, buffer, _use_new_zipfile_serialization=not legacy)
    return buffer.getvalue()


def odd_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def generated_files() -> list[tuple[str, bytes]]:
    """About 450 files: names say how each was made."""
    rng = random.Random(7)
    files = [(f"text{index}", text) for index, text in enumerate(TEXTS)]
    for index in range(60):
        size = rng.choice([1, 3, 10, 100, 1000, 5000])
        start = rng.choice([b"", b"PK\x03\x04", b"\x80\x02", b"\x80\x04"])
        files.append((f"random{index}", start + rng.randbytes(size)))
    for legacy in (False, True):
        data = small_checkpoint(legacy)
        kind = "legacy" if legacy else "zip"
        for cut in sorted(rng.sample(range(1, len(data)), 60)):
            files.append((f"{kind}_cut{cut}", data[:cut]))
        for position in rng.sample(range(len(data)), 100):
            flipped = bytearray(data)
            flipped[position] ^= 1 << rng.randrange(8)
            files.append((f"{kind}_flip{position}", bytes(flipped)))
    pickled = io.BytesIO()
    torch.save({"conv.weight": RunsCode()}, pickled)
    files.append(("runs_code", pickled.getvalue()))
    files += [
        ("zip_empty", odd_zip({})),
        ("zip_text_member", odd_zip({"archive/data.pkl": b"hello"})),
        ("zip_no_data_pkl", odd_zip({"archive/version": b"3\n"})),
        ("zip_pickle_without_storages", odd_zip({"archive/data.pkl": small_checkpoint(True)})),
        ("zip_other_archive", odd_zip({"a/b.txt": b"x", "c/d.txt": b"y"})),
    ]
    return files


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("fuzz")
    paths = []
    for name, data in generated_files():
        path = folder / f"{name}.pth"
        path.write_bytes(data)
        paths.append(path)
    return paths


def test_only_weights_errors_come_out_of_reading_or_loading(fuzzed):
    read_as_state_dicts = 0
    for path in fuzzed:
        # None has DAIN's layout, so load_model refuses every one.
        with pytest.raises(WeightsError) as refused:
            load_model(path)
        assert str(path) in str(refused.value), path.name
        # Flips inside tensor data may still read as a state dict: then it is one.
        try:
            state_dict = load_state_dict_file(path)
        except WeightsError as error:
            assert str(path) in str(error), path.name
        except Exception as error:
            pytest.fail(f"load_state_dict_file({path.name}) raised {type(error).__name__}: {error}")
        else:
            assert all(isinstance(value, torch.Tensor) for value in state_dict.values())
            read_as_state_dicts += 1
    assert read_as_state_dicts < len(fuzzed) / 2


@pytest.fixture(scope="module")
def released_bytes(random_weights) -> bytes:
    """A checkpoint in the released layout (random values), as saved."""
    return random_weights.read_bytes()


def test_the_undamaged_released_layout_loads(tmp_path, released_bytes):
    """The control for the damaged files below: the same bytes, whole, are a network."""
    path = tmp_path / "best.pth"
    path.write_bytes(released_bytes)
    assert not load_model(path).training


@pytest.mark.parametrize("damage", ["cut", "flip"])
def test_damaged_files_in_the_released_layout_give_weights_errors(tmp_path, released_bytes, damage):
    rng = random.Random(11)
    for index in range(2):
        if damage == "cut":
            damaged = released_bytes[: rng.randrange(len(released_bytes))]
        else:
            flipped = bytearray(released_bytes)
            for position in rng.sample(range(4096), 8):  # the header and the pickle
                flipped[position] ^= 0xFF
            damaged = bytes(flipped)
        path = tmp_path / f"{damage}{index}.pth"
        path.write_bytes(damaged)
        with pytest.raises(WeightsError) as refused:
            load_model(path)
        assert str(path) in str(refused.value)


@pytest.mark.parametrize("name", ["text1", "text4", "zip_text_member", "runs_code"])
def test_the_filter_reports_a_bad_weights_file_as_a_vs_error_naming_weights(tmp_path, name):
    files = dict(generated_files())
    data = files[name]
    path = tmp_path / "best.pth"
    path.write_bytes(data)
    with pytest.raises(vs.Error, match=r"^Interpolate: .*weights") as raised:
        vsdain.Interpolate(moving_clip(4), weights=str(path), device="cpu")
    assert str(path) in str(raised.value)


def test_a_pickle_that_runs_code_is_refused_and_never_suggests_weights_only_false(tmp_path):
    path = tmp_path / "best.pth"
    path.write_bytes(dict(generated_files())["runs_code"])
    with pytest.raises(WeightsError) as raised:
        load_state_dict_file(path)
    message = str(raised.value)
    assert "tries to run code" in message
    assert "refused" in message
    assert "system" in message
    assert "weights_only" not in message
    assert "truncated or corrupt" not in message
