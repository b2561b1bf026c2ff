"""Finding and loading the weights: search order, strict loading, and errors that name the
problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from checkpoints import random_state_dict, write_random_checkpoint

from vsdain import weights
from vsdain.cli_hint import command_hint
from vsdain.weights import (
    WeightsError,
    WeightsNotFoundError,
    check_layout,
    find_weights,
    load_model,
    load_state_dict_file,
)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def released_state() -> dict[str, torch.Tensor]:
    return random_state_dict(seed=0)


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory, released_state) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    return write_random_checkpoint(folder / "best.pth", state_dict=released_state)


@pytest.fixture
def fake_checkout(tmp_path, monkeypatch) -> Path:
    """A source checkout in tmp_path ("repo/vsdain" beside "repo/pyproject.toml" and
    "repo/models/"), a user cache in tmp_path/cache, and no $VSDAIN_WEIGHTS_DIR."""
    repo = tmp_path / "repo"
    (repo / "vsdain").mkdir(parents=True)
    (repo / "models").mkdir()
    (repo / "pyproject.toml").write_text("[project]\n")
    monkeypatch.setattr(weights, "_PACKAGE_DIR", repo / "vsdain")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(weights.WEIGHTS_DIR_ENV, raising=False)
    return repo


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


# Loading.


def test_released_layout_loads_strictly_with_every_value(checkpoint, released_state):
    model = load_model(checkpoint)
    assert not model.training
    loaded = model.state_dict()
    assert list(loaded) == list(released_state)
    for key, value in released_state.items():
        assert torch.equal(loaded[key], value), key


def test_load_model_casts_floating_tensors_only(checkpoint):
    model = load_model(checkpoint, dtype=torch.float64)
    state = model.state_dict()
    assert state["rectifyNet.block1.0.weight"].dtype == torch.float64
    assert state["depthNet.1.num_batches_tracked"].dtype == torch.int64


@pytest.mark.parametrize("wrapped", [False, True], ids=["plain", "state_dict_entry"])
def test_module_prefix_and_missing_batch_counters_are_accepted(tmp_path, released_state, wrapped):
    stripped = {
        f"module.{key}": value
        for key, value in released_state.items()
        if not key.endswith("num_batches_tracked")
    }
    assert len(stripped) == 954 - 155
    path = tmp_path / "best.pth"
    torch.save({"state_dict": stripped, "epoch": 3} if wrapped else stripped, path)

    state = load_state_dict_file(path)

    assert set(state) == set(released_state)
    assert torch.equal(state["depthNet.1.num_batches_tracked"], torch.tensor(0))
    check_layout(state)


def test_released_layout_runs_with_depth_aware_projection(checkpoint):
    assert load_model(checkpoint).projection == "depth"


def test_a_file_naming_the_averaging_projection_loads_with_it(tmp_path, released_state):
    path = tmp_path / "da_none.pth"
    torch.save({"state_dict": released_state, "projection": "average"}, path)
    assert load_model(path).projection == "average"


def test_an_unknown_projection_entry_is_refused(tmp_path, released_state):
    path = tmp_path / "odd.pth"
    torch.save({"state_dict": released_state, "projection": "sideways"}, path)
    with pytest.raises(WeightsError, match="unknown 'projection' entry 'sideways'"):
        load_model(path)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="cut_in_half"),
        pytest.param(lambda data: data[:-10], id="last_bytes_missing"),
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: b"<html><body>404 Not Found</body></html>", id="error_page"),
    ],
)
def test_truncated_or_garbled_file_says_so_and_suggests_downloading_again(
    tmp_path, checkpoint, damage
):
    path = tmp_path / "best.pth"
    path.write_bytes(damage(checkpoint.read_bytes()))
    with pytest.raises(WeightsError, match="truncated or corrupt") as caught:
        load_state_dict_file(path)
    assert command_hint("download") in str(caught.value)
    assert str(path) in str(caught.value)


class NotATensor:
    pass


def test_pickled_objects_are_refused_without_being_run(tmp_path):
    path = tmp_path / "best.pth"
    torch.save({"conv.weight": NotATensor()}, path)
    with pytest.raises(WeightsError, match="objects other than tensors"):
        load_state_dict_file(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (torch.zeros(3), "holds a Tensor, not a state dict"),
        (
            {"conv.weight": torch.zeros(3), "epoch": 7},
            "entries that are not tensors .1 entry: epoch.",
        ),
    ],
    ids=["bare_tensor", "dict_with_a_number"],
)
def test_file_that_is_not_a_state_dict_is_refused(tmp_path, content, message):
    path = tmp_path / "best.pth"
    torch.save(content, path)
    with pytest.raises(WeightsError, match=message):
        load_state_dict_file(path)


def test_renamed_key_is_named_as_missing_and_unexpected(released_state):
    state = dict(released_state)
    state["rectifyNet.block1.0.weights"] = state.pop("rectifyNet.block1.0.weight")
    with pytest.raises(WeightsError) as caught:
        check_layout(state)
    message = str(caught.value)
    assert "1 missing key (rectifyNet.block1.0.weight)" in message
    assert "1 unexpected key (rectifyNet.block1.0.weights)" in message
    assert "shape" not in message


def test_wrong_shape_is_named_with_expected_and_found_shapes(released_state):
    state = dict(released_state)
    state["initScaleNets_filter.0.weight"] = torch.zeros(16, 6, 5, 5)
    with pytest.raises(WeightsError) as caught:
        check_layout(state)
    assert (
        "1 shape mismatch (initScaleNets_filter.0.weight: expected (16, 6, 3, 3), "
        "found (16, 6, 5, 5))"
    ) in str(caught.value)


def test_many_problems_are_counted_and_only_a_few_listed(released_state):
    state = dict(list(released_state.items())[:-100])
    with pytest.raises(WeightsError) as caught:
        check_layout(state)
    message = str(caught.value)
    assert "954 tensors expected, 854 found" in message
    assert "100 missing keys" in message
    assert "and 95 more" in message


def test_load_model_error_names_the_file(tmp_path, released_state):
    state = dict(released_state)
    del state["flownets.conv1a.0.weight"]
    path = write_random_checkpoint(tmp_path / "best.pth", state_dict=state)
    with pytest.raises(WeightsError, match=rf"^{path}: .*1 missing key \(flownets\.conv1a"):
        load_model(path)


# Finding.


def test_this_checkout_is_searched_first():
    assert weights.checkout_dir() == REPO


def test_search_order_is_checkout_then_user_cache(fake_checkout, tmp_path):
    checkout_models = fake_checkout / "models"
    cache = tmp_path / "cache" / "vsdain"
    assert weights.weights_search_dirs() == [checkout_models, cache]
    assert weights.default_download_dir() == checkout_models

    in_cache = touch(cache / "best.pth")
    assert find_weights() == in_cache
    in_checkout = touch(checkout_models / "best.pth")
    assert find_weights() == in_checkout


def test_a_folder_with_only_one_of_the_checkout_markers_is_no_checkout(tmp_path, monkeypatch):
    # site-packages may hold some other project's models/ folder or pyproject.toml.
    (tmp_path / "vsdain").mkdir()
    monkeypatch.setattr(weights, "_PACKAGE_DIR", tmp_path / "vsdain")
    (tmp_path / "models").mkdir()
    assert weights.checkout_dir() is None
    (tmp_path / "models").rmdir()
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    assert weights.checkout_dir() is None


def test_installed_copy_searches_only_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "_PACKAGE_DIR", tmp_path / "site-packages" / "vsdain")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv(weights.WEIGHTS_DIR_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert weights.checkout_dir() is None
    assert weights.weights_search_dirs() == [tmp_path / "home" / ".cache" / "vsdain"]


def test_environment_variable_overrides_every_other_folder(fake_checkout, tmp_path, monkeypatch):
    touch(fake_checkout / "models" / "best.pth")
    override = tmp_path / "override"
    monkeypatch.setenv(weights.WEIGHTS_DIR_ENV, str(override))
    assert weights.weights_search_dirs() == [override]
    assert weights.default_download_dir() == override
    with pytest.raises(WeightsNotFoundError):
        find_weights()
    in_override = touch(override / "best.pth")
    assert find_weights() == in_override


def test_not_found_message_lists_folders_and_says_how_to_get_the_file(fake_checkout, tmp_path):
    with pytest.raises(WeightsNotFoundError) as caught:
        find_weights()
    error = caught.value
    first = fake_checkout / "models" / "best.pth"
    assert isinstance(error, FileNotFoundError)
    assert error.searched == [first, tmp_path / "cache" / "vsdain" / "best.pth"]
    message = str(error)
    for path in error.searched:
        assert f"  {path}\n" in message
    assert f"Run `{command_hint('download')}`" in message
    assert f"put a best.pth you obtained by hand at {first}" in message
    assert "$VSDAIN_WEIGHTS_DIR" in message


def test_explicit_path_may_be_a_file_or_a_folder(tmp_path):
    named = touch(tmp_path / "dain-finetuned.pth")
    assert find_weights(named) == named
    assert find_weights(str(named)) == named
    in_folder = touch(tmp_path / "best.pth")
    assert find_weights(tmp_path) == in_folder


def test_explicit_path_that_does_not_exist_is_named(tmp_path):
    missing = tmp_path / "nowhere" / "best.pth"
    with pytest.raises(WeightsNotFoundError) as caught:
        find_weights(missing)
    assert str(missing) in str(caught.value)
    assert f"Run `{command_hint('download')}`" in str(caught.value)


# Building the network for loaded weights.


def test_loaded_model_computes_what_a_copied_state_dict_gives(checkpoint, released_state):
    from vsdain.model import DAIN

    loaded = load_model(checkpoint)
    copied = DAIN().eval()
    copied.load_state_dict(released_state, strict=True)
    generator = torch.Generator().manual_seed(3)
    first, second = (torch.rand(1, 3, 64, 64, generator=generator) for _ in range(2))
    with torch.inference_mode():
        ours, reference = loaded(first, second), copied(first, second)
    assert torch.equal(ours.output, reference.output)


def test_no_parameter_or_buffer_is_left_on_the_meta_device(checkpoint):
    model = load_model(checkpoint, dtype=torch.float64)
    tensors = dict(model.named_parameters()) | dict(model.named_buffers())
    assert tensors
    assert [name for name, tensor in tensors.items() if tensor.is_meta] == []
    assert {tensor.device.type for tensor in tensors.values()} == {"cpu"}
    assert model.rectifyNet.block1[0].weight.dtype == torch.float64


def test_integer_tensors_where_weights_belong_are_a_weights_error(tmp_path, released_state):
    state = dict(released_state)
    state["rectifyNet.block1.0.weight"] = state["rectifyNet.block1.0.weight"].long()
    path = write_random_checkpoint(tmp_path / "best.pth", state_dict=state)
    with pytest.raises(WeightsError, match="do not fit the DAIN network"):
        load_model(path)


def test_checking_the_layout_builds_no_real_network(released_state, monkeypatch):
    from vsdain.model import DAIN

    built = []
    original = DAIN.__init__

    def counting(self, *args, **kwargs):
        built.append(torch.get_default_device())
        original(self, *args, **kwargs)

    monkeypatch.setattr(DAIN, "__init__", counting)
    weights._dain_shapes.cache_clear()
    check_layout(released_state)
    check_layout(released_state)
    assert built == [torch.device("meta")]
