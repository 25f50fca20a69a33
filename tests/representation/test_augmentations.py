"""Augmentations: shape / dtype / device kept, per-sample randomness, seeding, and exact values
against brute-force references."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from representation.augmentations import (ColorJitter, Compose, GaussianBlur, GaussianNoise, HorizontalFlip,
                                          IntensityJitter, RandomGrayscale, RandomMask, RandomResizedCrop,
                                          RandomShift, default_augmentation)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

IMAGE_AUGMENTATIONS = [
    RandomResizedCrop(), RandomShift(pad=4), HorizontalFlip(p=0.5), ColorJitter(p=1.0), IntensityJitter(),
    RandomGrayscale(p=0.5), GaussianBlur(p=1.0), GaussianNoise(std=0.1), RandomMask(p=0.2),
]


def seeded(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def same_image_batch(dtype: torch.dtype, device: str, batch: int = 16) -> torch.Tensor:
    """One random RGB image repeated, so any difference between outputs is per-sample randomness."""
    image = torch.rand(1, 3, 20, 20, generator=seeded(123))
    if dtype == torch.uint8:
        image = (image * 255).round().to(torch.uint8)
    return image.to(device).repeat(batch, 1, 1, 1)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
@pytest.mark.parametrize("augmentation", IMAGE_AUGMENTATIONS, ids=lambda a: type(a).__name__)
def test_keeps_shape_dtype_device_and_differs_per_sample(augmentation, dtype, device):
    images = same_image_batch(dtype, device)
    out = augmentation(images, seeded(0, device))
    assert out.shape == images.shape and out.dtype == dtype and out.device == images.device
    distinct = {tuple(sample.flatten().tolist()) for sample in out.cpu()}
    assert len(distinct) > 1


@pytest.mark.parametrize("augmentation", IMAGE_AUGMENTATIONS, ids=lambda a: type(a).__name__)
def test_seeded_generator_reproduces_and_other_seed_differs(augmentation):
    images = same_image_batch(torch.float32, "cpu")
    first = augmentation(images, seeded(7))
    assert torch.equal(first, augmentation(images, seeded(7)))
    assert not torch.equal(first, augmentation(images, seeded(8)))


def test_random_shift_is_a_replicate_padded_crop_of_each_sample():
    images = torch.randint(0, 256, (6, 2, 9, 11), dtype=torch.uint8, generator=seeded(1))
    pad = 2
    out = RandomShift(pad=pad)(images, seeded(3))
    padded = F.pad(images.float(), (pad, pad, pad, pad), mode="replicate").to(torch.uint8)
    for sample in range(images.shape[0]):
        crops = [padded[sample, :, dy:dy + 9, dx:dx + 11] for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)]
        assert any(torch.equal(out[sample], crop) for crop in crops)
    assert not torch.equal(out, images)
    assert torch.equal(RandomShift(pad=0)(images, seeded(3)), images)


def test_flip_mirrors_whole_samples_or_leaves_them():
    images = torch.rand(32, 3, 5, 7, generator=seeded(2))
    out = HorizontalFlip(p=0.5)(images, seeded(0))
    flipped = torch.tensor([torch.equal(o, x.flip(-1)) for o, x in zip(out, images)])
    kept = torch.tensor([torch.equal(o, x) for o, x in zip(out, images)])
    assert bool((flipped | kept).all()) and bool(flipped.any()) and bool(kept.any())
    assert torch.equal(HorizontalFlip(p=1.0)(images), images.flip(-1))
    assert torch.equal(HorizontalFlip(p=0.0)(images), images)


def test_resized_crop_identity_and_zoom_of_a_ramp():
    images = torch.rand(4, 3, 12, 12, generator=seeded(4))
    identity = RandomResizedCrop(scale=(1.0, 1.0), ratio=(1.0, 1.0))(images, seeded(0))
    torch.testing.assert_close(identity, images, atol=1e-5, rtol=0)
    # Bilinear sampling of a linear ramp is exact: a box of half the side maps to slope 1/2.
    ramp_x = torch.arange(16.0).expand(5, 1, 16, 16)
    zoomed = RandomResizedCrop(scale=(0.25, 0.25), ratio=(1.0, 1.0))(ramp_x, seeded(5))
    torch.testing.assert_close(zoomed.diff(dim=-1), torch.full((5, 1, 16, 15), 0.5), atol=1e-4, rtol=0)
    torch.testing.assert_close(zoomed.diff(dim=-2), torch.zeros(5, 1, 15, 16), atol=1e-4, rtol=0)
    assert zoomed[:, 0, 0, 0].unique().numel() > 1  # boxes sit at different places


def test_brightness_scales_each_sample_by_one_factor():
    images = 0.2 + 0.5 * torch.rand(8, 6, 4, 4, generator=seeded(6))  # two stacked RGB frames, no clamping
    out = ColorJitter(brightness=0.4, contrast=0.0, saturation=0.0, p=1.0)(images, seeded(0))
    ratio = (out / images).flatten(1)
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio))
    assert bool((ratio >= 0.6 - 1e-6).all() and (ratio <= 1.4 + 1e-6).all()) and ratio[:, 0].unique().numel() == 8


def test_contrast_keeps_the_mean_luma_and_saturation_keeps_gray_images():
    images = 0.4 + 0.2 * torch.rand(8, 3, 4, 4, generator=seeded(7))
    luma = 0.299 * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2]
    out = ColorJitter(brightness=0.0, contrast=0.4, saturation=0.0, p=1.0)(images, seeded(0))
    out_luma = 0.299 * out[:, 0] + 0.587 * out[:, 1] + 0.114 * out[:, 2]
    torch.testing.assert_close(out_luma.mean(dim=(1, 2)), luma.mean(dim=(1, 2)))
    gray = images[:, :1].expand(-1, 3, -1, -1)
    torch.testing.assert_close(ColorJitter(brightness=0.0, contrast=0.0, saturation=0.8, p=1.0)(gray, seeded(0)), gray)
    assert torch.equal(ColorJitter(p=0.0)(images, seeded(0)), images)


def test_intensity_jitter_scales_each_sample_within_two_sigma():
    frames = 0.1 + torch.rand(16, 4, 6, 6, generator=seeded(8))
    out = IntensityJitter(scale=0.05)(frames, seeded(0))
    ratio = (out / frames).flatten(1)
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio))
    assert bool((ratio >= 0.9 - 1e-6).all() and (ratio <= 1.1 + 1e-6).all())


def test_uint8_results_are_the_float_results_rounded_and_clamped():
    frames = torch.full((64, 4, 3, 3), 250, dtype=torch.uint8)
    as_uint8 = IntensityJitter(scale=0.05)(frames, seeded(0))
    as_float = IntensityJitter(scale=0.05)(frames.float(), seeded(0))  # same draws, no rounding
    assert torch.equal(as_uint8, as_float.round().clamp(0, 255).to(torch.uint8))
    assert float(as_float.max()) > 255 and int(as_uint8.max()) == 255


def test_grayscale_matches_the_luma_formula():
    images = torch.rand(4, 6, 3, 3, generator=seeded(9))
    out = RandomGrayscale(p=1.0)(images, seeded(0))
    for frame in range(2):
        r, g, b = images[:, 3 * frame], images[:, 3 * frame + 1], images[:, 3 * frame + 2]
        for channel in range(3):
            torch.testing.assert_close(out[:, 3 * frame + channel], 0.299 * r + 0.587 * g + 0.114 * b)
    assert torch.equal(RandomGrayscale(p=0.0)(images, seeded(0)), images)


def test_blur_matches_a_loop_convolution_with_replicated_borders():
    images = torch.rand(2, 3, 7, 8, generator=seeded(10), dtype=torch.float64)
    sigma, size = 1.3, 5
    out = GaussianBlur(sigma=(sigma, sigma), kernel_size=size, p=1.0)(images, seeded(0))
    weights = torch.exp(-torch.arange(-2.0, 3.0, dtype=torch.float64) ** 2 / (2 * sigma ** 2))
    weights = weights / weights.sum()
    expected = torch.zeros_like(images)
    for y in range(7):
        for x in range(8):
            for dy in range(-2, 3):
                for dx in range(-2, 3):
                    source = images[:, :, min(max(y + dy, 0), 6), min(max(x + dx, 0), 7)]
                    expected[:, :, y, x] += weights[dy + 2] * weights[dx + 2] * source
    torch.testing.assert_close(out, expected)
    constant = torch.full((3, 2, 9, 9), 0.3)
    torch.testing.assert_close(GaussianBlur(p=1.0)(constant, seeded(0)), constant)


def test_vector_noise_and_masking_statistics():
    vectors = torch.ones(200, 50)
    noisy = GaussianNoise(std=0.5)(vectors, seeded(0))
    assert abs(float((noisy - vectors).std()) - 0.5) < 0.02
    masked = RandomMask(p=0.3)(vectors, seeded(0))
    assert set(masked.unique().tolist()) == {0.0, 1.0}
    assert abs(float((masked == 0).float().mean()) - 0.3) < 0.02


def test_compose_applies_in_order_with_the_same_generator():
    images = torch.rand(4, 3, 10, 10, generator=seeded(11))
    shift, jitter = RandomShift(pad=2), IntensityJitter(scale=0.1)
    generator = seeded(5)
    expected = jitter(shift(images, generator), generator)
    assert torch.equal(Compose([shift, jitter])(images, seeded(5)), expected)


def test_default_augmentation_by_observation_type():
    atari = default_augmentation((4, 84, 84), torch.uint8)
    assert [type(a) for a in atari.augmentations] == [RandomShift, IntensityJitter]
    rgb = default_augmentation((3, 32, 32), torch.uint8)
    assert [type(a) for a in rgb.augmentations] == [RandomResizedCrop, HorizontalFlip, ColorJitter,
                                                    RandomGrayscale, GaussianBlur]
    vector = default_augmentation((8,), torch.float32)
    assert [type(a) for a in vector.augmentations] == [GaussianNoise, RandomMask]
    with pytest.raises(ValueError, match="no default augmentation"):
        default_augmentation((), torch.int64)


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        RandomShift()(torch.zeros(4, 8))
    with pytest.raises(ValueError, match="multiple of 3"):
        ColorJitter()(torch.zeros(2, 4, 5, 5))
    with pytest.raises(ValueError, match="probability"):
        HorizontalFlip(p=1.5)
    with pytest.raises(ValueError, match="odd"):
        GaussianBlur(kernel_size=4)
    with pytest.raises(ValueError, match="scale"):
        RandomResizedCrop(scale=(0.0, 1.0))
