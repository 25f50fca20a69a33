"""Gymnasium's classic-control environments as batched tensor ops on any device.

Each class reproduces one registered gymnasium 1.4 id (dynamics, reward, termination, the
``TimeLimit`` truncation and the reset distribution) for N envs at once, so rollouts of
thousands of envs run at the speed of a few elementwise kernels and never leave the device.
"""
from __future__ import annotations

import torch

from envs.torch_envs.acrobot import TorchAcrobot
from envs.torch_envs.base import TorchClassicControlEnv
from envs.torch_envs.cartpole import TorchCartPole
from envs.torch_envs.mountain_car import TorchMountainCar, TorchMountainCarContinuous
from envs.torch_envs.pendulum import TorchPendulum

TORCH_ENVS: dict[str, type[TorchClassicControlEnv]] = {
    cls.env_id: cls
    for cls in (TorchCartPole, TorchAcrobot, TorchMountainCar, TorchMountainCarContinuous,
                TorchPendulum)
}


def make_torch_env(env_id: str, num_envs: int = 1, seed: int = 0,
                   device: str | torch.device = "cpu", **kw) -> TorchClassicControlEnv:
    """Builds ``num_envs`` copies of ``env_id``; ``kw`` are the class's options (``dtype``,
    ``max_episode_steps``, ``validate_actions`` and the env's own, e.g. Pendulum's ``g``)."""
    if env_id not in TORCH_ENVS:
        raise ValueError(f"no torch-native env '{env_id}' (choose from {', '.join(TORCH_ENVS)})")
    try:
        return TORCH_ENVS[env_id](num_envs, seed=seed, device=device, **kw)
    except TypeError as error:
        raise ValueError(f"bad options {kw} for torch env '{env_id}': {error}") from None


__all__ = ["TORCH_ENVS", "TorchAcrobot", "TorchCartPole", "TorchClassicControlEnv",
           "TorchMountainCar", "TorchMountainCarContinuous", "TorchPendulum", "make_torch_env"]
