"""Batched data augmentations that run on the observations' own device.

Every augmentation maps a batch ``[B, ...]`` to a batch of the same shape, dtype and device,
drawing its random parameters per sample, so a whole minibatch is augmented with a handful
of tensor operations and no Python loop over samples. Image augmentations take channel-first
batches ``[B, C, H, W]``; integer (uint8) images are transformed in float and rounded back,
float images are taken to lie in ``[0, 1]`` where a colour operation needs a range.

Randomness comes from an optional ``torch.Generator``: the same seeded generator gives the same
augmented batch. Parameters are drawn on the generator's device and moved to the batch's.

Shared by the self-supervised methods (``representation.ssl``) and the CURL auxiliary
objective, which is why the defaults per observation type live here (``default_augmentation``).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

# ITU-R BT.601 luma weights, the ones torchvision and PIL use for grayscale.
_LUMA = (0.299, 0.587, 0.114)


class Augmentation:
    """A random transformation of a batch: ``augmentation(x, generator) -> Tensor`` like ``x``."""

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:  # pragma: no cover
        raise NotImplementedError


# ----------------------------------------------------------------------------- helpers

def _rand(batch: int, like: Tensor, generator: torch.Generator | None) -> Tensor:
    """``batch`` uniform draws in [0, 1) on ``like``'s device."""
    device = generator.device if generator is not None else like.device
    return torch.rand(batch, generator=generator, device=device).to(like.device)


def _uniform(batch: int, low: float, high: float, like: Tensor, generator: torch.Generator | None) -> Tensor:
    return low + (high - low) * _rand(batch, like, generator)


def _coin(batch: int, p: float, like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Per-sample booleans, True with probability ``p``."""
    return _rand(batch, like, generator) < p


def _per_sample(values: Tensor, x: Tensor) -> Tensor:
    """Reshapes ``[B]`` so that it broadcasts against ``x`` along the batch dimension."""
    return values.view(-1, *([1] * (x.dim() - 1)))


def _as_float(x: Tensor) -> Tensor:
    return x if x.is_floating_point() else x.float()


def _restore(y: Tensor, like: Tensor) -> Tensor:
    """Casts a float result back to ``like``'s dtype; integer images are rounded and clamped."""
    if like.is_floating_point():
        return y.to(like.dtype)
    info = torch.iinfo(like.dtype)
    return y.round().clamp(info.min, info.max).to(like.dtype)


def _top_value(x: Tensor) -> float:
    """Brightest pixel value: 255 for uint8 frames, 1 for float images."""
    return 1.0 if x.is_floating_point() else float(torch.iinfo(x.dtype).max)


def _check_images(x: Tensor, name: str) -> None:
    if x.dim() != 4:
        raise ValueError(f"{name} needs image batches [B, C, H, W], got shape {tuple(x.shape)}")


def _check_rgb(x: Tensor, name: str) -> None:
    _check_images(x, name)
    if x.shape[1] % 3:
        raise ValueError(f"{name} needs RGB channels (a multiple of 3), got {x.shape[1]} channels")


def _check_probability(p: float, name: str) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} probability must lie in [0, 1], got {p}")


def _grayscale(rgb: Tensor) -> Tensor:
    """Luma of ``[B, G, 3, H, W]`` (G stacked RGB frames) as ``[B, G, 1, H, W]``."""
    r, g, b = rgb.unbind(dim=2)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(2)


def _rgb_groups(x: Tensor) -> Tensor:
    """``[B, 3G, H, W]`` -> ``[B, G, 3, H, W]`` so stacked RGB frames are jittered alike."""
    b, c, h, w = x.shape
    return x.reshape(b, c // 3, 3, h, w)


# ----------------------------------------------------------------------------- geometric

@dataclass(frozen=True)
class RandomResizedCrop(Augmentation):
    """Crops a random area and aspect ratio and resizes it back to the input size.

    The SimCLR crop (Chen et al. 2020, Appendix A): area fraction in ``scale``, aspect ratio
    log-uniform in ``ratio``. All crops are one batched affine grid and one ``grid_sample``.
    Where a drawn box does not fit, it is clamped to the image instead of redrawn.
    """

    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)

    def __post_init__(self) -> None:
        if not 0.0 < self.scale[0] <= self.scale[1] <= 1.0:
            raise ValueError(f"crop scale must satisfy 0 < low <= high <= 1, got {self.scale}")
        if not 0.0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"crop ratio must satisfy 0 < low <= high, got {self.ratio}")

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_images(x, "RandomResizedCrop")
        b, _, h, w = x.shape
        area = _uniform(b, *self.scale, x, generator)
        ratio = torch.exp(_uniform(b, math.log(self.ratio[0]), math.log(self.ratio[1]), x, generator))
        # Width and height as fractions of the image, so that (width*W) / (height*H) = ratio.
        width = torch.sqrt(area * ratio * h / w).clamp(max=1.0)
        height = torch.sqrt(area / ratio * w / h).clamp(max=1.0)
        # In grid coordinates the image spans [-1, 1]; a box of half-size `width` fits if its
        # centre lies within 1 - width of the middle.
        centre_x = (1.0 - width) * (2.0 * _rand(b, x, generator) - 1.0)
        centre_y = (1.0 - height) * (2.0 * _rand(b, x, generator) - 1.0)
        images = _as_float(x)
        theta = torch.zeros(b, 2, 3, device=x.device, dtype=images.dtype)
        theta[:, 0, 0], theta[:, 0, 2] = width, centre_x
        theta[:, 1, 1], theta[:, 1, 2] = height, centre_y
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        crops = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return _restore(crops, x)


@dataclass(frozen=True)
class RandomShift(Augmentation):
    """Shifts each image by up to ``pad`` pixels in x and y, filling with edge pixels.

    The DrQ / CURL augmentation for Atari (Kostrikov et al. 2020, Section 3.1; Laskin et al.
    2020): replicate-pad by ``pad`` and randomly crop back to size. Reading the input at
    clamped row and column indices is exactly that, without building the padded copy, and
    works on uint8 frames as they are.
    """

    pad: int = 4

    def __post_init__(self) -> None:
        if self.pad < 0:
            raise ValueError(f"shift padding must be >= 0, got {self.pad}")

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_images(x, "RandomShift")
        b, c, h, w = x.shape
        device = generator.device if generator is not None else x.device
        shifts = torch.randint(-self.pad, self.pad + 1, (2, b), generator=generator, device=device).to(x.device)
        rows = (torch.arange(h, device=x.device) + shifts[0, :, None]).clamp(0, h - 1)  # [B, H]
        cols = (torch.arange(w, device=x.device) + shifts[1, :, None]).clamp(0, w - 1)  # [B, W]
        # One gather over the flattened pixels (a third of the time of a row then a column gather).
        pixels = (rows[:, :, None] * w + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
        return x.reshape(b, c, h * w).gather(2, pixels).view(b, c, h, w)


@dataclass(frozen=True)
class HorizontalFlip(Augmentation):
    """Mirrors each image left-right with probability ``p``."""

    p: float = 0.5

    def __post_init__(self) -> None:
        _check_probability(self.p, "flip")

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_images(x, "HorizontalFlip")
        flip = _coin(x.shape[0], self.p, x, generator)
        return torch.where(_per_sample(flip, x), x.flip(-1), x)


# ----------------------------------------------------------------------------- photometric

@dataclass(frozen=True)
class ColorJitter(Augmentation):
    """Random brightness, contrast and saturation, applied with probability ``p``.

    Factors are uniform in ``[1 - s, 1 + s]`` per sample, in that fixed order, with
    torchvision's blending rules (SimCLR uses strength 0.8 * (0.8, 0.8, 0.8) with p = 0.8;
    our milder 0.4 suits small RL frames). Stacked RGB frames ``[B, 3G, H, W]`` get the same
    factors across the stack. Results are clamped to the pixel range.
    """

    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    p: float = 0.8

    def __post_init__(self) -> None:
        _check_probability(self.p, "colour jitter")
        if min(self.brightness, self.contrast, self.saturation) < 0:
            raise ValueError("colour jitter strengths must be >= 0")

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_rgb(x, "ColorJitter")
        b = x.shape[0]
        apply = _coin(b, self.p, x, generator)
        top = _top_value(x)
        rgb = _rgb_groups(_as_float(x))

        def factor(strength: float) -> Tensor:
            drawn = _uniform(b, max(0.0, 1.0 - strength), 1.0 + strength, x, generator)
            return _per_sample(torch.where(apply, drawn, torch.ones_like(drawn)), rgb)

        rgb = (rgb * factor(self.brightness)).clamp(0, top)
        mean = _grayscale(rgb).mean(dim=(-3, -2, -1), keepdim=True)
        rgb = ((rgb - mean) * factor(self.contrast) + mean).clamp(0, top)
        gray = _grayscale(rgb)
        rgb = ((rgb - gray) * factor(self.saturation) + gray).clamp(0, top)
        return _restore(rgb.reshape(x.shape), x)


@dataclass(frozen=True)
class IntensityJitter(Augmentation):
    """Scales each whole sample by ``1 + scale * clip(N(0, 1), -2, 2)``.

    The intensity augmentation used with random shifts on Atari frame stacks (Schwarzer et al.
    2021, SPR; Kostrikov et al. 2020, DrQ): works on any number of channels.
    """

    scale: float = 0.05

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        device = generator.device if generator is not None else x.device
        noise = torch.randn(x.shape[0], generator=generator, device=device).to(x.device)
        factor = 1.0 + self.scale * noise.clamp(-2.0, 2.0)
        return _restore(_as_float(x) * _per_sample(factor, x), x)


@dataclass(frozen=True)
class RandomGrayscale(Augmentation):
    """Replaces RGB by its luma (kept as 3 equal channels) with probability ``p``."""

    p: float = 0.2

    def __post_init__(self) -> None:
        _check_probability(self.p, "grayscale")

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_rgb(x, "RandomGrayscale")
        gray = _grayscale(_rgb_groups(_as_float(x))).expand(-1, -1, 3, -1, -1).reshape(x.shape)
        apply = _coin(x.shape[0], self.p, x, generator)
        return torch.where(_per_sample(apply, x), _restore(gray, x), x)


@dataclass(frozen=True)
class GaussianBlur(Augmentation):
    """Blurs with a Gaussian of per-sample ``sigma`` with probability ``p``.

    SimCLR's blur (Chen et al. 2020, Appendix A): sigma uniform in [0.1, 2.0], kernel 10% of
    the image side when ``kernel_size`` is None. The 2-D kernel is separable, so it is two
    grouped 1-D convolutions with one kernel per (sample, channel); borders repeat edge pixels.
    """

    sigma: tuple[float, float] = (0.1, 2.0)
    kernel_size: int | None = None
    p: float = 0.5

    def __post_init__(self) -> None:
        _check_probability(self.p, "blur")
        if not 0.0 < self.sigma[0] <= self.sigma[1]:
            raise ValueError(f"blur sigma must satisfy 0 < low <= high, got {self.sigma}")
        if self.kernel_size is not None and (self.kernel_size < 1 or self.kernel_size % 2 == 0):
            raise ValueError(f"blur kernel size must be odd and positive, got {self.kernel_size}")

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_images(x, "GaussianBlur")
        b, c, h, w = x.shape
        size = self.kernel_size or (int(0.1 * min(h, w)) // 2 * 2 + 1)
        radius = size // 2
        images = _as_float(x)
        sigma = _uniform(b, *self.sigma, x, generator).to(images.dtype)
        apply = _coin(b, self.p, x, generator)
        offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=images.dtype)
        kernels = torch.exp(-offsets.square() / (2.0 * sigma[:, None].square()))  # [B, size]
        kernels = (kernels / kernels.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)
        planes = images.reshape(1, b * c, h, w)  # one group per (sample, channel)
        planes = F.conv2d(F.pad(planes, (radius, radius, 0, 0), mode="replicate"),
                          kernels.view(b * c, 1, 1, size), groups=b * c)
        planes = F.conv2d(F.pad(planes, (0, 0, radius, radius), mode="replicate"),
                          kernels.view(b * c, 1, size, 1), groups=b * c)
        blurred = _restore(planes.reshape(x.shape), x)
        return torch.where(_per_sample(apply, x), blurred, x)


# ----------------------------------------------------------------------------- vectors

@dataclass(frozen=True)
class GaussianNoise(Augmentation):
    """Adds ``N(0, std^2)`` noise to every entry (vectors or images).

    ``std`` is relative to the value range: as given for floats, times 255 for uint8 frames.
    """

    std: float = 0.1

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        values = _as_float(x)
        device = generator.device if generator is not None else x.device
        noise = torch.randn(values.shape, generator=generator, device=device, dtype=values.dtype).to(x.device)
        return _restore(values + self.std * _top_value(x) * noise, x)


@dataclass(frozen=True)
class RandomMask(Augmentation):
    """Zeroes each entry independently with probability ``p`` (feature dropout without rescaling)."""

    p: float = 0.1

    def __post_init__(self) -> None:
        _check_probability(self.p, "mask")

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        device = generator.device if generator is not None else x.device
        keep = torch.rand(x.shape, generator=generator, device=device).to(x.device) >= self.p
        return torch.where(keep, x, torch.zeros_like(x))


# ----------------------------------------------------------------------------- composition

class Compose(Augmentation):
    """Applies augmentations in order, all drawing from the same generator."""

    def __init__(self, augmentations: Sequence[Augmentation]):
        self.augmentations = tuple(augmentations)

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        for augmentation in self.augmentations:
            x = augmentation(x, generator)
        return x

    def __repr__(self) -> str:
        return f"Compose({', '.join(map(repr, self.augmentations))})"


def default_augmentation(sample_shape: Sequence[int], dtype: torch.dtype) -> Augmentation:
    """Sane defaults for one observation of ``sample_shape``:

    - frame stacks ``[C, H, W]`` with C != 3 (Atari's ``[4, 84, 84]`` uint8): random shift by
      4 pixels and intensity jitter, as DrQ / SPR;
    - RGB images ``[3, H, W]``: SimCLR's crop, flip, colour jitter, grayscale and blur;
    - float vectors ``[D]``: Gaussian noise (std 0.1) and random masking (10%).
    """
    shape = tuple(int(size) for size in sample_shape)
    if len(shape) == 3 and shape[0] != 3:
        return Compose([RandomShift(pad=4), IntensityJitter(scale=0.05)])
    if len(shape) == 3:
        return Compose([RandomResizedCrop(), HorizontalFlip(), ColorJitter(), RandomGrayscale(), GaussianBlur()])
    if len(shape) == 1 and dtype.is_floating_point:
        return Compose([GaussianNoise(std=0.1), RandomMask(p=0.1)])
    raise ValueError(f"no default augmentation for observations of shape {shape} and dtype {dtype}; pass one")
