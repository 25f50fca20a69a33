"""Denoising diffusion probabilistic models (Ho et al. 2020).

Time steps are indexed ``0 .. T-1`` in code for the paper's ``1 .. T``:
``alpha_bar[t] = prod_{s <= t} (1 - beta[s])``.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from gymnasium import spaces
from torch import Tensor, nn

from representation.encoders import Encoder, register_encoder
from representation.generative.base import GenerativeModel
from representation.generative.denoisers import SmallUNet, TimeConditionedMLP
from representation.generative.nets import box_shape, signed_unit_interval

SCHEDULES = ("linear", "cosine")


def beta_schedule(kind: str, timesteps: int) -> Tensor:
    """The variances beta_1..beta_T (float64).

    linear: Ho et al. 2020 (Sec. 4) use 1e-4 .. 0.02 over T = 1000; both ends are scaled by
    1000 / T so that shorter chains still reach noise (Nichol & Dhariwal 2021, Sec. 3.2).
    cosine: alpha_bar(t) = f(t) / f(0), f(t) = cos^2((t/T + s) / (1 + s) * pi/2), s = 0.008,
    beta_t = 1 - alpha_bar(t) / alpha_bar(t-1) clipped at 0.999 (Nichol & Dhariwal 2021, Eq. 17).
    """
    if timesteps < 1:
        raise ValueError(f"timesteps must be >= 1, got {timesteps}")
    if kind == "linear":
        scale = 1000.0 / timesteps
        return torch.linspace(scale * 1e-4, min(scale * 0.02, 0.999), timesteps, dtype=torch.float64)
    if kind == "cosine":
        s = 0.008
        f = torch.cos((torch.arange(timesteps + 1, dtype=torch.float64) / timesteps + s) / (1 + s) * math.pi / 2) ** 2
        alpha_bar = f / f[0]
        return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)
    raise ValueError(f"unknown beta schedule '{kind}' (choose from {', '.join(SCHEDULES)})")


@register_encoder("ddpm")
class DenoiserEncoder(Encoder):
    """A DDPM's noise-prediction network read as a feature extractor, as Xiang et al. (2023) read
    a trained denoiser's intermediate activations: its deepest layer at noise level ``timestep``.

    The input is the mean of q(x_t | x_0), ``input_scale * x_0`` with ``input_scale =
    sqrt(alpha_bar_t)``, rather than a noisy draw, so the features are a deterministic function
    of the observation. Vectors give the MLP's last hidden layer; images the U-Net's middle block,
    ``[2 * base_channels, H / 4, W / 4]``, average-pooled to ``grid`` x ``grid`` and flattened.
    """

    def __init__(self, observation_space: spaces.Space, timestep: int | None = None, input_scale: float | None = None,
                 hidden_sizes: Sequence[int] = (128, 128, 128), base_channels: int = 32, time_dim: int = 64,
                 grid: int = 4):
        super().__init__()
        shape = box_shape(observation_space, "ddpm")
        if timestep is None or input_scale is None:
            raise ValueError("the ddpm encoder is a trained DDPM's: write one with scripts/pretrain.py --method ddpm "
                             "and pass it as --encoder-checkpoint")
        if timestep < 0 or not 0.0 < input_scale <= 1.0 or grid < 1:
            raise ValueError(f"need timestep >= 0, input_scale in (0, 1] and grid >= 1, got {timestep}, "
                             f"{input_scale} and {grid}")
        self.timestep, self.input_scale, self.grid = int(timestep), float(input_scale), int(grid)
        if len(shape) == 1:
            self.denoiser: nn.Module = TimeConditionedMLP(shape[0], hidden_sizes, time_dim)
            self.out_dim = int(list(hidden_sizes)[-1])
        elif len(shape) == 3 and shape[1] % 4 == 0 and shape[2] % 4 == 0:
            self.denoiser = SmallUNet(shape[0], base_channels, time_dim)
            self.out_dim = 2 * int(base_channels) * self.grid ** 2
        else:
            raise ValueError(f"the ddpm encoder takes vectors [D] or images [C, H, W] with H, W divisible by 4, "
                             f"got {shape}")

    def forward(self, obs: Tensor) -> Tensor:
        x = signed_unit_interval(obs) * self.input_scale
        t = torch.full((x.shape[0],), self.timestep, dtype=torch.long, device=x.device)
        features = self.denoiser.features(x, t)
        if features.dim() == 4:
            features = nn.functional.adaptive_avg_pool2d(features, self.grid).flatten(1)
        return features


class DDPM(GenerativeModel):
    """A diffusion model that learns eps_theta(x_t, t), the noise in x_t.

    Vectors ``[D]`` use a time-conditioned MLP; images ``[C, H, W]`` (H, W divisible by 4) a small
    U-Net. Data should be roughly in [-1, 1]; uint8 pixels are mapped there, and samples come back
    in that range. Sampling uses an exponential moving average of the trained weights with decay
    ``ema_decay`` (Ho et al. 2020, Appendix B; 0 samples with the trained weights themselves): the
    last iterates of SGD scatter around the optimum, and the sample statistics, such as the share
    of each mode, follow that scatter.
    """

    def __init__(self, data_shape: Sequence[int], timesteps: int = 1000, schedule: str = "linear",
                 hidden_sizes: Sequence[int] = (128, 128, 128), base_channels: int = 32, time_dim: int = 64,
                 ema_decay: float = 0.995):
        config = dict(data_shape=data_shape, timesteps=timesteps, schedule=schedule, hidden_sizes=hidden_sizes,
                      base_channels=base_channels, time_dim=time_dim, ema_decay=ema_decay)
        super().__init__(config, data_shape)
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), got {ema_decay}")
        betas = beta_schedule(schedule, timesteps)
        self.timesteps = int(timesteps)
        # Derived from the config, so not saved (persistent=False); float32 after the float64 product.
        self.register_buffer("betas", betas.float(), persistent=False)
        self.register_buffer("alpha_bars", torch.cumprod(1 - betas, 0).float(), persistent=False)
        if len(self.data_shape) == 1:
            self.denoiser: nn.Module = TimeConditionedMLP(self.data_shape[0], hidden_sizes, time_dim)
        elif len(self.data_shape) == 3 and self.data_shape[1] % 4 == 0 and self.data_shape[2] % 4 == 0:
            self.denoiser = SmallUNet(self.data_shape[0], base_channels, time_dim)
        else:
            raise ValueError(f"a DDPM takes vectors [D] or images [C, H, W] with H, W divisible by 4, "
                             f"got data_shape {self.data_shape}")
        self.ema_decay = float(ema_decay)
        self.ema_denoiser = copy.deepcopy(self.denoiser).requires_grad_(False) if self.ema_decay else None

    def _per_example(self, values: Tensor, t: Tensor) -> Tensor:
        return values[t].reshape(-1, *([1] * len(self.data_shape)))

    def q_mean_variance(self, x0: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I) (Ho et al. 2020, Eq. 4)."""
        alpha_bar = self._per_example(self.alpha_bars, t)
        return alpha_bar.sqrt() * x0, (1 - alpha_bar).expand_as(x0)

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """A draw of x_t given x_0 in one step, with the given standard normal ``noise``."""
        mean, variance = self.q_mean_variance(x0, t)
        return mean + variance.sqrt() * noise

    def loss(self, x: Tensor, labels: Tensor | None) -> tuple[Tensor, dict[str, float]]:
        """||eps - eps_theta(sqrt(a_t) x_0 + sqrt(1 - a_t) eps, t)||^2 at t ~ U{1..T}
        (Algorithm 1; the simplified objective L_simple, Eq. 14)."""
        x0 = signed_unit_interval(x)
        t = torch.randint(0, self.timesteps, (x0.shape[0],), device=x0.device)
        noise = torch.randn_like(x0)
        loss = nn.functional.mse_loss(self.denoiser(self.q_sample(x0, t, noise), t), noise)
        return loss, {"loss": loss.item()}

    def training_step(self, x: Tensor, labels: Tensor | None, optimizers: list[torch.optim.Optimizer],
                      step: int) -> dict[str, float]:
        metrics = super().training_step(x, labels, optimizers, step)
        if self.ema_denoiser is not None:
            # Short averages at first, so the initial weights are forgotten quickly.
            decay = min(self.ema_decay, (1 + step) / (10 + step))
            with torch.no_grad():
                torch._foreach_lerp_(list(self.ema_denoiser.parameters()), list(self.denoiser.parameters()), 1 - decay)
        return metrics

    def configure_optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        return [torch.optim.Adam(self.denoiser.parameters(), lr=lr)]

    @torch.no_grad()
    def sample(self, n: int, labels: Tensor | None = None) -> Tensor:
        """Ancestral sampling (Algorithm 2) with sigma_t^2 = beta_t:
        x_{t-1} = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps_theta(x_t, t)) / sqrt(1 - beta_t) + sigma_t z."""
        self.check_labels(labels, n)
        denoiser = self.denoiser if self.ema_denoiser is None else self.ema_denoiser
        x = torch.randn(n, *self.data_shape, device=self.device)
        for step in reversed(range(self.timesteps)):
            t = torch.full((n,), step, device=self.device, dtype=torch.long)
            beta, alpha_bar = self.betas[step], self.alpha_bars[step]
            x = (x - beta / (1 - alpha_bar).sqrt() * denoiser(x, t)) / (1 - beta).sqrt()
            if step > 0:
                x = x + beta.sqrt() * torch.randn_like(x)
        return x

    def encoder_for_agents(self, timestep: int | None = None, grid: int = 4) -> tuple[Encoder, str, dict]:
        """The (averaged, when ``ema_decay``) denoiser as a ``ddpm`` encoder at noise level
        ``timestep`` (default ``T // 10``: features of lightly noised inputs)."""
        timestep = self.timesteps // 10 if timestep is None else int(timestep)
        if not 0 <= timestep < self.timesteps:
            raise ValueError(f"timestep must lie in [0, {self.timesteps}), got {timestep}")
        options = dict(timestep=timestep, input_scale=float(self.alpha_bars[timestep].sqrt()),
                       hidden_sizes=list(self.config["hidden_sizes"]), base_channels=self.config["base_channels"],
                       time_dim=self.config["time_dim"], grid=grid)
        encoder = DenoiserEncoder(spaces.Box(-1.0, 1.0, self.data_shape), **options).to(self.device)
        averaged = self.denoiser if self.ema_denoiser is None else self.ema_denoiser
        encoder.denoiser.load_state_dict(averaged.state_dict())
        return encoder, "ddpm", options
