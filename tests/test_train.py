"""``python -m vsdain train``: a short CPU run on real triplets that lowers the loss, writes a
checkpoint that loads strictly and resumes exactly; and the recipe's parts one by one."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import vsdain
from vsdain.commands import main
from vsdain.evaluation.datasets import Triplet
from vsdain.model import Synthesis
from vsdain.progress import Progress
from vsdain.training import recipe
from vsdain.training.checkpoint import save_weights
from vsdain.training.data import TripletDataset, epoch_plan, split_validation
from vsdain.training.loss import charbonnier, interpolation_loss

# Four epochs: enough for the loss to fall to about half (0.47 of it on the reference CPU).
STEPS = 12
INTERRUPTED_AT = 2  # mid-epoch: 3 training triplets make 3 steps per epoch
RESUMED_TO = 5  # past the end of an epoch; its steps are compared with the whole run's


def train_command(data: Path, out: Path, *extra: str) -> list[str]:
    # Four triplets (one held out for validation), 64x64 centre crops without augmentation, the
    # reference README's learning rates, from scratch: a tiny over-fitting run.
    return [
        "train", str(data), "--layout", "ucf101", "--out", str(out),
        "--limit", "4", "--val-fraction", "0.25", "--crop", "64", "64", "--batch-size", "1",
        "--no-augment", "--lr-preset", "code", "--device", "cpu", "--seed", "3",
        "--log-every", "4", *extra,
    ]  # fmt: skip


def read_log(out: Path) -> list[float]:
    with (out / "log.csv").open(newline="") as file:
        return [float(row["loss"]) for row in csv.DictReader(file)]


@pytest.fixture(scope="module")
def runs(shared_data, tmp_path_factory):
    """One uninterrupted run of STEPS steps; one stopped at INTERRUPTED_AT and resumed up to
    RESUMED_TO."""
    data = shared_data / "ucf101"
    whole = tmp_path_factory.mktemp("whole")
    resumed = tmp_path_factory.mktemp("resumed")
    started = time.monotonic()
    assert main(train_command(data, whole, "--from-scratch", "--steps", str(STEPS))) == 0
    seconds = time.monotonic() - started
    first = train_command(data, resumed, "--from-scratch", "--steps", str(INTERRUPTED_AT))
    assert main(first) == 0
    second = train_command(data, resumed, "--resume", str(resumed / "last.pth"))
    assert main([*second, "--steps", str(RESUMED_TO)]) == 0
    print(f"\n{STEPS}-step training run: {seconds:.1f} s")
    return whole, resumed


@pytest.mark.slow
def test_training_lowers_the_loss(runs):
    losses = read_log(runs[0])
    assert len(losses) == STEPS
    before, after = np.mean(losses[:4]), np.mean(losses[-4:])
    print(f"\nmean loss of steps 1-4: {before:.4f}; of steps {STEPS - 3}-{STEPS}: {after:.4f}")
    assert after < 0.7 * before


@pytest.mark.slow
def test_checkpoint_loads_strictly_with_load_model(runs):
    checkpoint = runs[0] / "last.pth"
    model = vsdain.load_model(checkpoint)
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["progress"]["step"] == STEPS
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved["state_dict"][key]), key
    best = vsdain.load_model(runs[0] / "best.pth")  # the network at its best validation loss
    assert not best.training


@pytest.mark.slow
def test_resumed_run_repeats_the_uninterrupted_one(runs):
    whole, resumed = runs
    # Same seed, same data order, restored optimiser: the CPU path is deterministic here.
    assert read_log(resumed) == pytest.approx(read_log(whole)[:RESUMED_TO], rel=1e-5)
    with (resumed / "epochs.csv").open(newline="") as file:
        epochs = list(csv.DictReader(file))
    assert [int(row["epoch"]) for row in epochs] == list(range(RESUMED_TO // 3))
    assert all(np.isfinite(float(row["validation_loss"])) for row in epochs)


@pytest.mark.slow
def test_resume_refuses_a_different_depth_mode(runs, shared_data, capsys):
    resumed = runs[1]
    command = train_command(shared_data / "ucf101", resumed, "--resume", str(resumed / "last.pth"))
    assert main([*command, "--depth", "frozen", "--steps", str(RESUMED_TO + 1)]) == 1
    assert "depth" in capsys.readouterr().err


def test_crop_must_be_a_multiple_of_64(shared_data, tmp_path, capsys):
    command = train_command(shared_data / "ucf101", tmp_path, "--from-scratch")
    command[command.index("--crop") + 1] = "100"
    assert main([*command, "--steps", "1"]) == 2
    assert "multiples of 64" in capsys.readouterr().err


# -- the recipe ------------------------------------------------------------------------------


def test_learning_rate_presets():
    assert recipe.learning_rates("paper", "joint") == {
        "kernel": 1e-4, "context": 1e-4, "synthesis": 1e-4, "flow": 1e-6, "depth": 1e-7,
    }  # fmt: skip
    assert recipe.learning_rates("code", "joint") == {
        "kernel": 5e-4, "context": 5e-4, "synthesis": 5e-4, "flow": 5e-6, "depth": 5e-7,
    }  # fmt: skip
    assert recipe.learning_rates("paper", "scratch")["depth"] == 1e-4
    assert recipe.learning_rates("paper", "frozen")["depth"] == 0.0
    assert recipe.learning_rates("paper", "joint", {"flow": 0.0, "kernel": None})["flow"] == 0.0
    with pytest.raises(ValueError, match="does not train"):
        recipe.learning_rates("paper", "none", {"depth": 1e-5})


@pytest.fixture(scope="module")
def frozen_depth_model():
    model = recipe.build_model("frozen")
    rates = recipe.learning_rates("paper", "frozen")
    optimizer = recipe.make_optimizer(model, rates)
    recipe.set_training_mode(model, rates)
    return model, optimizer


def test_frozen_depth_is_left_out_and_kept_in_eval_mode(frozen_depth_model):
    model, optimizer = frozen_depth_model
    assert [group["name"] for group in optimizer.param_groups] == [
        "kernel", "context", "synthesis", "flow",
    ]  # fmt: skip
    assert optimizer.defaults["betas"] == (0.9, 0.999)
    assert not any(parameter.requires_grad for parameter in model.depthNet.parameters())
    batch_norms = [m for m in model.depthNet.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert batch_norms and not any(norm.training for norm in batch_norms)
    assert model.rectifyNet.training and model.flownets.training


def test_depth_none_projects_without_depth():
    with torch.device("meta"):  # the projection only: no memory, no initialisation
        assert recipe.build_model("none").projection == "average"
        assert recipe.build_model("joint").projection == "depth"


@pytest.mark.parametrize("depth", ["joint", "none"])
def test_saved_networks_load_with_the_projection_they_were_trained_with(tmp_path, depth):
    model = recipe.build_model(depth)
    path = save_weights(tmp_path / "best.pth", model)
    loaded = vsdain.load_model(path)
    assert loaded.projection == model.projection
    loaded_state = loaded.state_dict()
    for key, value in model.state_dict().items():
        assert torch.equal(loaded_state[key], value), key
    if depth == "joint":  # the released layout: a plain state dict, as the reference saves it
        assert set(torch.load(path, weights_only=True)) == set(model.state_dict())


def test_depth_from_scratch_reinitialises_the_depth_network():
    torch.manual_seed(0)
    model = recipe.build_model("scratch")
    norm = next(m for m in model.depthNet.modules() if isinstance(m, torch.nn.BatchNorm2d))
    norm.running_mean.fill_(5.0)
    before = [parameter.clone() for parameter in model.depthNet.parameters()]
    kernel_before = model.rectifyNet.state_dict()
    recipe.apply_depth_mode(model, "scratch")
    after = list(model.depthNet.parameters())
    assert not any(torch.equal(a, b) for a, b in zip(before, after, strict=True) if a.dim() > 1)
    assert torch.equal(norm.running_mean, torch.zeros_like(norm.running_mean))
    for key, value in model.rectifyNet.state_dict().items():
        assert torch.equal(value, kernel_before[key])


def test_plateau_schedule_is_the_references(frozen_depth_model):
    _, optimizer = frozen_depth_model
    scheduler = recipe.make_scheduler(optimizer, "plateau")
    start = recipe.current_rates(optimizer)
    for _ in range(5):  # the best epoch, then 4 without improvement: patience not exceeded
        recipe.step_scheduler(scheduler, 1.0)
    assert recipe.current_rates(optimizer) == start
    recipe.step_scheduler(scheduler, 1.0)
    for name, rate in recipe.current_rates(optimizer).items():
        assert rate == pytest.approx(0.2 * start[name])


def test_paper_schedule_decays_once_after_30_epochs():
    model = recipe.build_model("joint")
    optimizer = recipe.make_optimizer(model, recipe.learning_rates("paper", "joint"))
    scheduler = recipe.make_scheduler(optimizer, "paper")
    rates = []
    for epoch in range(40):
        rates.append(recipe.current_rates(optimizer)["kernel"])
        optimizer.step()  # no gradients: a no-op that keeps the scheduler's order check quiet
        recipe.step_scheduler(scheduler, float(epoch))
    assert rates[:30] == [1e-4] * 30
    assert rates[30:] == pytest.approx([2e-5] * 10)


# -- loss, data, progress ---------------------------------------------------------------------


def test_charbonnier_is_l1_with_epsilon_1e6():
    assert float(charbonnier(torch.zeros(4))) == pytest.approx(1e-6)
    difference = torch.tensor([0.5, -0.25])
    assert float(charbonnier(difference)) == pytest.approx(0.375, rel=1e-9)


def test_loss_penalises_only_the_output_by_default():
    truth = torch.zeros(1, 3, 4, 4)
    synthesis = Synthesis(
        blend=torch.full_like(truth, 0.5),
        output=torch.full_like(truth, 0.1),
        flow_to_first=torch.zeros(1, 2, 4, 4),
        flow_to_second=torch.zeros(1, 2, 4, 4),
    )
    assert float(interpolation_loss(synthesis, truth)) == pytest.approx(0.1, rel=1e-5)
    both = interpolation_loss(synthesis, truth, alpha=(1.0, 1.0))
    assert float(both) == pytest.approx(0.6, rel=1e-5)


def coded_triplet(folder: Path) -> Triplet:
    """Frames 72 high and 80 wide whose pixels say where they come from: R = 3x, G = 3y,
    B = 100 * frame index."""
    y, x = np.mgrid[0:72, 0:80]
    paths = []
    for index in range(3):
        frame = np.stack([3 * x, 3 * y, np.full_like(x, 100 * index)], axis=2).astype(np.uint8)
        paths.append(folder / f"{index}.png")
        Image.fromarray(frame).save(paths[-1])
    return Triplet("coded", *paths)


def test_augmentations_flip_reverse_and_crop_consistently(tmp_path):
    dataset = TripletDataset([coded_triplet(tmp_path)], crop=(64, 64))
    seen = set()
    for seed in range(48):
        sample = (dataset[(0, seed)] * 255).round().long()  # (3 frames, RGB, 64, 64)
        assert torch.equal(sample, (dataset[(0, seed)] * 255).round().long())
        order = sample[:, 2, 0, 0].tolist()
        assert order in ([0, 100, 200], [200, 100, 0])
        red, green = sample[0, 0], sample[0, 1]
        flipped_x = bool(red[0, 0] > red[0, -1])
        flipped_y = bool(green[0, 0] > green[-1, 0])
        assert abs(int(red[0, -1]) - int(red[0, 0])) == 3 * 63  # a 64-wide window
        for frame in sample:  # the same crop and flips on all three frames
            assert torch.equal(frame[:2], sample[0, :2])
        seen.add((order[0] == 200, flipped_x, flipped_y))
    assert len(seen) == 8
    centre = (dataset[(0, None)] * 255).round().long()
    assert int(centre[0, 0, 0, 0]) == 3 * 8 and int(centre[0, 1, 0, 0]) == 3 * 4


def test_epoch_plan_is_reproducible_and_drops_the_partial_batch():
    plan = epoch_plan(7, 2, seed=1, epoch=0)
    assert plan == epoch_plan(7, 2, seed=1, epoch=0)
    assert plan != epoch_plan(7, 2, seed=1, epoch=1)
    assert len(plan) == 3 and all(len(batch) == 2 for batch in plan)
    indices = [index for batch in plan for index, _ in batch]
    assert len(set(indices)) == 6
    assert all(seed is None for batch in epoch_plan(7, 2, seed=1, epoch=0, augment=False)
               for _, seed in batch)  # fmt: skip


def test_validation_split_is_spread_and_sized():
    triplets = [Triplet(str(i), Path(), Path(), Path()) for i in range(100)]
    training, validation = split_validation(triplets, 0.05)
    assert len(validation) == 5 and len(training) == 95
    assert [t.name for t in validation] == ["0", "25", "50", "74", "99"]
    assert split_validation(triplets, 0.0) == (triplets, [])


def test_progress_prints_plain_lines_without_a_terminal():
    stream = io.StringIO()
    ticks = iter(range(100))
    with Progress(5, "train", every=2, stream=stream, clock=lambda: float(next(ticks))) as bar:
        for step in range(5):
            bar.update(loss=f"{0.5 / (step + 1):.3f}")
    lines = stream.getvalue().splitlines()
    assert [line.split("  ")[0] for line in lines] == ["train 2/5", "train 4/5", "train 5/5"]
    assert "loss 0.100" in lines[-1] and "it/s" in lines[-1]
