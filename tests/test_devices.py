"""One device rule for the filter's ``device=`` and the commands' ``--device``."""

from __future__ import annotations

import pytest
import torch

from vsdain.devices import resolve_device


def test_none_picks_cuda_only_where_pytorch_sees_a_gpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None).type == expected


@pytest.mark.parametrize("given", ["cpu", torch.device("cpu")])
def test_cpu_is_accepted_as_text_or_device(given):
    assert resolve_device(given) == torch.device("cpu")


@pytest.mark.parametrize("given", ["tpu", "gpu0", "meta"])
def test_unknown_devices_name_the_argument_and_the_choices(given):
    with pytest.raises(ValueError, match=r"^--device must be 'cpu', 'cuda' or 'cuda:<index>'"):
        resolve_device(given, name="--device")


def test_a_non_string_is_refused():
    with pytest.raises(ValueError, match="device must be a string"):
        resolve_device(3)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
@pytest.mark.parametrize(
    ("name", "fix"), [("device", "device='cpu'"), ("--device", "--device cpu")]
)
def test_cuda_without_a_gpu_suggests_the_cpu_in_the_callers_spelling(name, fix):
    with pytest.raises(ValueError, match="no CUDA GPU") as caught:
        resolve_device("cuda:1", name=name)
    assert fix in str(caught.value)
