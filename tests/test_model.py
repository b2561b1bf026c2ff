"""The network: checkpoint layout, sub-network shapes, padding and whole-pair inference."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vsdain.model import DAIN, Padding
from vsdain.model.flow import backward_warp
from vsdain.model.kernel_estimation import run_head, run_trunk

LAYOUT = Path(__file__).parent / "data" / "dain_state_dict.tsv"
RELEASED_PARAMETERS = 24_031_656


def released_layout() -> list[tuple[str, tuple[int, ...]]]:
    rows = LAYOUT.read_text().splitlines()[1:]
    layout = []
    for row in rows:
        key, shape = row.split("\t")
        layout.append((key, tuple(int(size) for size in shape.split("x")) if shape else ()))
    return layout


def test_state_dict_matches_released_layout_key_for_key():
    layout = released_layout()
    assert len(layout) == 954
    state = DAIN().state_dict()
    assert [(key, tuple(value.shape)) for key, value in state.items()] == layout


def test_parameter_count_is_the_released_models():
    assert sum(p.numel() for p in DAIN().parameters()) == RELEASED_PARAMETERS


def test_random_checkpoint_in_released_layout_loads_strictly():
    generator = torch.Generator().manual_seed(7)
    checkpoint = {}
    for key, shape in released_layout():
        if key.endswith("num_batches_tracked"):
            checkpoint[key] = torch.tensor(3, dtype=torch.long)
        elif key.endswith("running_var"):
            checkpoint[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            checkpoint[key] = torch.randn(shape, generator=generator)
    model = DAIN()
    model.load_state_dict(checkpoint, strict=True)
    loaded = model.state_dict()
    for key in ("flownets.conv6aa.0.weight", "depthNet.3.0.1.0.3.4.running_var"):
        assert torch.equal(loaded[key], checkpoint[key])


def test_projection_mode_is_validated():
    with pytest.raises(ValueError, match="projection"):
        DAIN(projection="nearest")


@pytest.mark.parametrize(
    ("height", "width", "expected"),
    [
        (256, 448, (32, 32, 32, 32)),  # 448 -> 512 centred; 256 is aligned: 32 each side
        (480, 853, (21, 22, 16, 16)),  # 853 -> 896 (43: 21 + 22); 480 -> 512
        (507, 960, (32, 32, 2, 3)),  # 960 is aligned -> 1024; 507 -> 512 (5: 2 + 3)
        (1, 1, (63, 64, 63, 64)),
    ],
)
def test_padding_follows_the_reference_rule_and_round_trips(height, width, expected):
    padding = Padding.for_size(height, width)
    assert (padding.left, padding.right, padding.top, padding.bottom) == expected
    padded_height, padded_width = padding.padded_size
    assert padded_height % 64 == 0 and padded_width % 64 == 0
    frames = torch.rand(2, 3, height, width)
    padded = padding.pad(frames)
    assert padded.shape[-2:] == (padded_height, padded_width)
    assert torch.equal(padding.crop(padded), frames)
    # Replicate padding: the top-left corner repeats the frame's corner pixel.
    assert torch.equal(padded[..., 0, 0], frames[..., 0, 0])


def test_padding_rejects_other_sizes():
    with pytest.raises(ValueError, match="expected frames of 5x4"):
        Padding.for_size(4, 5).pad(torch.zeros(1, 3, 5, 4))


def test_subnetwork_shapes(random_dain):
    image = torch.rand(2, 3, 128, 192)
    with torch.inference_mode():
        features = random_dain.frame_features(image)
        assert features.log_depth.shape == (2, 1, 128, 192)
        assert features.context.shape == (2, 196, 128, 192)
        assert torch.equal(features.context[:, :3], image)  # the context starts with the image
        assert torch.equal(features.context[:, 195:], features.log_depth)
        assert [level.shape[1:] for level in features.pyramid] == [
            (16, 64, 96),
            (32, 32, 48),
            (64, 16, 24),
            (96, 8, 12),
            (128, 4, 6),
            (196, 2, 3),
        ]
        coarse = random_dain.flownets.decode(features.pyramid, features.pyramid)
        assert coarse.shape == (2, 2, 32, 48)
        trunk = run_trunk(random_dain.initScaleNets_filter, torch.cat([image, image], 1))
        assert trunk.shape == (2, 16, 128, 192)
        assert run_head(random_dain.initScaleNets_filter1, trunk).shape == (2, 16, 128, 192)


def test_unpadded_sizes_are_rejected_by_the_padded_entry_points(random_dain):
    with pytest.raises(ValueError, match="multiples of 64"):
        random_dain.frame_features(torch.rand(1, 3, 100, 128))


def test_pwc_warp_zero_flow_is_identity_and_border_samples_are_zeroed():
    features = torch.rand(1, 4, 5, 6, dtype=torch.float64)
    flow = torch.zeros(1, 2, 5, 6, dtype=torch.float64)
    assert torch.allclose(backward_warp(features, flow), features)
    flow[:, 0] = 1.0  # sample one pixel to the right: the last column leaves the image
    shifted = backward_warp(features, flow)
    assert torch.allclose(shifted[..., :-1], features[..., 1:])
    assert torch.equal(shifted[..., -1], torch.zeros_like(shifted[..., -1]))
    flow[:, 0] = 0.5  # half a pixel: the last column touches the outside and is masked to 0
    half = backward_warp(features, flow)
    assert torch.allclose(half[..., :-1], (features[..., :-1] + features[..., 1:]) / 2)
    assert torch.equal(half[..., -1], torch.zeros_like(half[..., -1]))


@pytest.mark.slow
def test_full_forward_448x256_is_finite_deterministic_and_shaped(random_dain):
    generator = torch.Generator().manual_seed(3)
    first = torch.rand(1, 3, 256, 448, generator=generator)
    second = torch.roll(first, shifts=(2, 5), dims=(2, 3))
    timestamps = [0.25, 0.75]
    frames = random_dain.interpolate(first, second, timestamps)
    assert len(frames) == 2
    for frame in frames:
        assert frame.shape == (1, 3, 256, 448)
        assert torch.isfinite(frame).all()
        assert frame.min() >= 0.0 and frame.max() <= 1.0
    again = random_dain.interpolate(first, second, [0.75])
    assert torch.equal(again[0], frames[1])
    assert not torch.equal(frames[0], frames[1])  # t matters


# (height, width, batch): all three pad to the network's smallest input, 128x128.
@pytest.mark.parametrize(("height", "width", "batch"), [(29, 37, 2), (1, 70, 1), (65, 3, 1)])
def test_odd_sizes_round_trip_through_the_network(random_dain, height, width, batch):
    generator = torch.Generator().manual_seed(height * width)
    first = torch.rand(batch, 3, height, width, generator=generator)
    second = torch.rand(batch, 3, height, width, generator=generator)
    (frame,) = random_dain.interpolate(first, second, [0.5])
    assert frame.shape == (batch, 3, height, width)
    assert torch.isfinite(frame).all()
    if batch > 1:
        # Batch items are independent: the second item alone gives the same frame.
        (alone,) = random_dain.interpolate(first[1:], second[1:], [0.5])
        torch.testing.assert_close(alone, frame[1:], rtol=1e-5, atol=1e-5)


def test_interpolate_reuses_pair_features_exactly(random_dain):
    generator = torch.Generator().manual_seed(11)
    first = torch.rand(1, 3, 40, 60, generator=generator)
    second = torch.rand(1, 3, 40, 60, generator=generator)
    together = random_dain.interpolate(first, second, [0.3, 0.6])
    # The second timestamp is the one made from reused features: it equals a fresh computation.
    padding = Padding.for_size(40, 60)
    with torch.inference_mode():
        features_first = random_dain.frame_features(padding.pad(first))
        features_second = random_dain.frame_features(padding.pad(second))
        pair = random_dain.pair_features(features_first, features_second)
        alone = padding.crop(random_dain.synthesize(pair, 0.6).output).clamp(0, 1)
    assert torch.equal(together[1], alone)
    assert not torch.equal(together[0], together[1])


def test_interpolate_validates_its_inputs(random_dain):
    frame = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        random_dain.interpolate(frame, frame, [1.0])
    with pytest.raises(ValueError, match="differ in shape"):
        random_dain.interpolate(frame, torch.rand(1, 3, 8, 9), [0.5])
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        random_dain.interpolate(frame[:, :1], frame[:, :1], [0.5])
    training = DAIN()
    with pytest.raises(RuntimeError, match="eval"):
        training.interpolate(frame, frame, [0.5])


def test_identical_frames_with_zero_motion_average_projection_gives_blend_of_images():
    """With both kernels at the four centre taps (bilinear) and the depth-free projection, the
    blend of two identical frames is the frame itself wherever the flow is zero."""
    torch.manual_seed(0)
    model = DAIN(projection="average").eval()
    image = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        features = model.frame_features(image)
        pair = model.pair_features(features, features)
        kernel = torch.zeros(1, 16, 64, 64)
        kernel[:, [5, 6, 9, 10]] = 1.0
        zero_flow = torch.zeros(1, 2, 64, 64)
        pair = type(pair)(
            first=features,
            second=features,
            flow_forward=zero_flow,
            flow_backward=zero_flow,
            kernel_first=kernel,
            kernel_second=kernel,
        )
        result = model.synthesize(pair, 0.25)
    torch.testing.assert_close(result.blend, image, rtol=1e-6, atol=1e-6)
    assert torch.equal(result.flow_to_first, zero_flow)


def test_training_forward_backpropagates_into_every_trained_subnetwork():
    torch.manual_seed(0)
    model = DAIN().train()
    first = torch.rand(1, 3, 64, 64)
    second = torch.roll(first, 3, dims=3)
    result = model(first, second, 0.5, fill_holes=False)
    result.output.mean().backward()
    for name in ("initScaleNets_filter", "ctxNet", "rectifyNet", "flownets", "depthNet"):
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(name)]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), name
    # The reference never uses PWC-Net's deconv2: it stays without gradient.
    assert model.flownets.deconv2.weight.grad is None
