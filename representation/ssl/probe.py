"""Linear probes: how much of the true state can a linear read-out recover from frozen features?

The protocol of AtariARI (Anand et al. 2019, "Unsupervised State Representation Learning in
Atari"): encode frames with a frozen encoder, fit a linear map from features to ground-truth
variables on the earlier frames, and report R^2 on the later, held-out ones. Splitting by time
keeps near-identical consecutive frames from landing on both sides of the split. The read-out is
closed-form ridge regression (Hoerl & Kennard 1970) on standardised features, with its penalty
chosen on a validation slice of the training frames.

Ground truth: Atari object positions read from the console RAM at the addresses AtariARI
annotated (checked for Pong against the objects' pixels: correlation above 0.99 for all four),
through gymnasium's ``AtariPreprocessing`` + ``FrameStackObservation``, which reproduce the
training frames of ale-py's ``AtariVectorEnv`` pixel for pixel. For vector-observation envs the
observation is the state (``collect.state_ground_truth``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from representation.encoders import Encoder, encode

#: RAM addresses of object positions, from AtariARI's ``ram_annotations.py``.
RAM_POSITIONS: dict[str, dict[str, int]] = {
    "pong": dict(player_y=51, enemy_y=50, ball_x=49, ball_y=54),
    "breakout": dict(ball_x=99, ball_y=101, player_x=72),
    "ms_pacman": dict(player_x=10, player_y=16),
    "seaquest": dict(player_x=70, player_y=97),
}
#: Penalties tried, as multiples of the number of training frames (features are standardised,
#: so ``X^T X`` has ``n`` on its diagonal and these span "barely regularised" to "mostly prior").
L2_GRID = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


# ----------------------------------------------------------------------------- the read-out

def ridge_regression(features: Tensor, targets: Tensor, l2: float) -> tuple[Tensor, Tensor]:
    """Weights ``[F, T]`` and bias ``[T]`` minimising ``|X W + b - Y|^2 + l2 |W|^2`` (bias unpenalised).

    Closed form on centred data: ``W = (Xc^T Xc + l2 I)^-1 Xc^T Yc`` and ``b = mean(Y) - mean(X) W``.
    Solved in float64; ``l2 = 0`` is ordinary least squares (needs full-rank features).
    """
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0, got {l2}")
    x, y = features.double(), targets.double()
    x_mean, y_mean = x.mean(dim=0), y.mean(dim=0)
    xc, yc = x - x_mean, y - y_mean
    gram = xc.T @ xc + l2 * torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    weights = torch.linalg.solve(gram, xc.T @ yc)
    return weights, y_mean - x_mean @ weights


def r2_score(predictions: Tensor, targets: Tensor) -> Tensor:
    """Coefficient of determination per column, ``1 - SS_res / SS_tot``; NaN where the target is constant."""
    residual = (targets - predictions).double().square().sum(dim=0)
    total = (targets.double() - targets.double().mean(dim=0)).square().sum(dim=0)
    return torch.where(total > 0, 1.0 - residual / total.clamp_min(1e-300), torch.nan)


@dataclass(frozen=True)
class ProbeFit:
    r2: Tensor          # [T] held-out R^2 per ground-truth variable
    l2: float           # the penalty picked on the validation slice


def fit_linear_probe(features: Tensor, targets: Tensor, test_fraction: float = 0.2,
                     l2_grid: Sequence[float] = L2_GRID) -> ProbeFit:
    """Held-out R^2 of a ridge read-out from ``features`` ``[n, F]`` to ``targets`` ``[n, T]``.

    Rows are in time order: the last ``test_fraction`` is the test set; the last
    ``test_fraction`` of the rest picks the penalty (largest mean R^2), then the probe is refit
    on all training rows. Features are standardised with training statistics; constant features
    become 0 and so carry no information.
    """
    n = features.shape[0]
    n_train = int(round(n * (1 - test_fraction)))
    n_fit = int(round(n_train * (1 - test_fraction)))
    if min(n_fit, n_train - n_fit, n - n_train) < 2 or targets.shape[0] != n:
        raise ValueError(f"a linear probe needs matching features and targets with at least 10 rows, "
                         f"got {n} and {targets.shape[0]}")

    def scored(train: slice, test: slice, l2_factor: float) -> Tensor:
        x = features[train].double()
        mean, std = x.mean(dim=0), x.std(dim=0)
        std = torch.where(std > 0, std, torch.ones_like(std))
        weights, bias = ridge_regression((x - mean) / std, targets[train], l2_factor * x.shape[0])
        return r2_score((features[test].double() - mean) / std @ weights + bias, targets[test])

    validation = [scored(slice(0, n_fit), slice(n_fit, n_train), factor).nan_to_num(-torch.inf).mean()
                  for factor in l2_grid]
    best = l2_grid[int(torch.stack(validation).argmax())]
    return ProbeFit(scored(slice(0, n_train), slice(n_train, n), best), float(best * n_train))


def probe_encoders(encoders: Mapping[str, Encoder], obs: Tensor, truth: Tensor,
                   names: Sequence[str]) -> dict[str, dict[str, float | None]]:
    """``{encoder label: {variable: held-out R^2 (None if the variable never changed), "mean": ...}}``."""
    results: dict[str, dict[str, float | None]] = {}
    for label, encoder in encoders.items():
        r2 = fit_linear_probe(encode(encoder, obs), truth).r2
        row: dict[str, float | None] = {name: None if value.isnan() else float(value) for name, value in zip(names, r2)}
        row["mean"] = None if r2.isnan().all() else float(r2.nanmean())
        results[label] = row
    return results


def probe_table(results: Mapping[str, Mapping[str, float | None]]) -> str:
    """Results of ``probe_encoders`` as a plain-text table: one row per variable, one column per encoder."""
    labels = list(results)
    variables = list(next(iter(results.values())))
    width = max(len(v) for v in variables + ["variable"])
    lines = ["  ".join(["variable".ljust(width), *(label.rjust(max(10, len(label))) for label in labels)])]
    for variable in variables:
        values = [results[label][variable] for label in labels]
        cells = [("n/a" if value is None else f"{value:.3f}").rjust(max(10, len(label)))
                 for label, value in zip(labels, values)]
        lines.append("  ".join([variable.ljust(width), *cells]))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- Atari ground truth

def ram_positions(game: str) -> dict[str, int]:
    """Annotated RAM addresses of ``game`` (ale-py ROM name, e.g. ``pong``)."""
    if game not in RAM_POSITIONS:
        raise ValueError(f"no RAM annotations for '{game}' (annotated: {', '.join(sorted(RAM_POSITIONS))})")
    return RAM_POSITIONS[game]


class RamInfo(gym.Wrapper):
    """Puts the console RAM (uint8 ``[128]``) into ``info["ram"]``, so a vector env batches it."""

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return obs, {**info, "ram": self.env.unwrapped.ale.getRAM()}

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, "ram": self.env.unwrapped.ale.getRAM()}


class AtariRamEnv:
    """Atari frames preprocessed as for training (84x84 gray, 4-stack, frameskip 4 with max-pooling,
    up to ``noop_max`` no-op starts, no sticky actions), with the RAM of the current frame in ``ram``.

    ale-py's C++ ``AtariVectorEnv`` does not expose RAM, hence gymnasium single envs in a
    synchronous vector env. ``reset``/``step`` follow ``VecEnv`` except that ``info`` carries
    only ``ram`` (uint8 ``[N, 128]``, also kept in ``self.ram``), which always matches the
    observations just returned.
    """

    def __init__(self, game: str, num_envs: int, *, device: str | torch.device = "cpu", noop_max: int = 30):
        import ale_py
        from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

        def make() -> gym.Env:
            env = ale_py.AtariEnv(game=game, frameskip=1, repeat_action_probability=0.0,
                                  max_num_frames_per_episode=108_000)
            env = AtariPreprocessing(env, frame_skip=4, noop_max=noop_max, screen_size=84, grayscale_obs=True)
            # Zero padding after a reset, as AtariVectorEnv's frame stack does.
            return RamInfo(FrameStackObservation(env, 4, padding_type="zero"))

        self.env = gym.vector.SyncVectorEnv([make] * num_envs,
                                            autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.single_observation_space = self.env.single_observation_space
        self.single_action_space = self.env.single_action_space
        self.ram = torch.zeros(num_envs, 128, dtype=torch.uint8, device=self.device)

    def _observe(self, obs: np.ndarray, info: dict[str, Any]) -> Tensor:
        # Same-step autoreset puts the new episode's reset info (RAM included) next to its first frame.
        self.ram = torch.from_numpy(info["ram"]).to(self.device)
        return torch.from_numpy(obs).to(self.device)

    def reset(self, seed: int | None = None) -> Tensor:
        return self._observe(*self.env.reset(seed=seed))

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Tensor]]:
        obs, reward, terminated, truncated, info = self.env.step(action.to("cpu", torch.int64).numpy())
        obs = self._observe(obs, info)
        return (obs, torch.as_tensor(reward, dtype=torch.float32, device=self.device),
                torch.as_tensor(terminated, device=self.device), torch.as_tensor(truncated, device=self.device),
                {"ram": self.ram})

    def close(self) -> None:
        self.env.close()


class RamPositions:
    """Ground truth for ``collect_frames``: the annotated RAM bytes of an ``AtariRamEnv``'s current frames."""

    def __init__(self, game: str):
        self.names = list(ram_positions(game))
        self.addresses = torch.tensor(list(ram_positions(game).values()))

    def __call__(self, env: AtariRamEnv, obs: Tensor) -> Tensor:
        return env.ram[:, self.addresses.to(env.ram.device)].float()
