"""Greedy evaluation episodes on an environment of their own, optionally saved as GIFs."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from envs import is_atari, make_env
from envs.vec_env import VecEnv
from wrappers.normalize import NormalizeObservation, RunningMeanStd

EVAL_SEED_OFFSET = 10_000


def make_eval_env(config, obs_stats: RunningMeanStd | None = None) -> VecEnv:
    """``config.eval_episodes`` parallel envs, scored on whole games (no life-loss endings); with
    ``capture_video``, envs that render frames."""
    options = dict(config.env_options)
    if is_atari(config.env):
        options["episodic_life"] = False
    render = "rgb_array" if config.capture_video and not is_atari(config.env) else None
    if render:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame draws rgb_array frames without a display
    # Torch-native envs draw nothing: filmed episodes run in Gymnasium's own, whose dynamics they match
    # to float32 precision (long episodes of an unsteady policy may still part ways).
    backend = "auto" if render and config.backend == "torch" else config.backend
    env = make_env(config.env, config.eval_episodes, seed=config.seed + EVAL_SEED_OFFSET, device=config.device,
                   backend=backend, clip_rewards=False, render_mode=render, **options)
    if obs_stats is not None:
        env = NormalizeObservation(env, stats=obs_stats, training=False)
    return env


def _frame(env: VecEnv, obs: torch.Tensor) -> np.ndarray | None:
    frames = env.render()
    if frames:
        return np.asarray(frames[0])
    if obs.dtype == torch.uint8 and obs.dim() == 4:  # pixel stacks: the newest frame of env 0
        return obs[0, -1].cpu().numpy()
    return None


def save_gif(frames: list[np.ndarray], path: Path, fps: int = 30) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)


@torch.no_grad()
def evaluate(agent, env: VecEnv, video_path: Path | None = None, max_steps: int = 27_000) -> np.ndarray:
    """Runs each env's first episode with the greedy policy; returns the scores.

    The env is reseeded every time, so evaluations do not depend on what came before them. An
    episode still running after ``max_steps`` (Atari's 108,000-frame cap; a greedy policy that
    loops in an env without a time limit) is scored with the rewards it collected so far.
    """
    obs = env.reset(seed=agent.config.seed + EVAL_SEED_OFFSET)
    done = torch.zeros(env.num_envs, dtype=torch.bool, device=env.device)
    returns = torch.zeros(env.num_envs, dtype=torch.float64, device=env.device)
    frames = [] if video_path is not None else None
    for _ in range(max_steps):
        if frames is not None and not bool(done[0]):
            frame = _frame(env, obs)
            if frame is not None:
                frames.append(frame)
        obs, reward, _, _, info = env.step(agent.act(obs, explore=False))
        returns += reward * ~done
        done |= info["episode_done"]
        if bool(done.all()):
            break
    if frames:
        save_gif(frames, video_path)
    return returns.cpu().numpy()
