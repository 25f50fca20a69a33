"""The one training loop every agent runs through: collect, update, log, evaluate, checkpoint."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.checkpoint import rng_state, seed_everything, set_rng_state
from agents.evaluation import evaluate, make_eval_env
from agents.logger import Logger
from envs import make_env
from envs.vec_env import VecEnv
from representation.files import save_atomic
from wrappers.normalize import NormalizeObservation, NormalizeReward

CHECKPOINT = "checkpoint.pt"


def default_run_dir(config, agent_name: str) -> Path:
    env = config.env.replace("/", "_")
    return Path("runs") / f"{env}__{agent_name}__{config.seed}__{int(time.time())}"


def make_train_env(config) -> VecEnv:
    env = make_env(config.env, config.num_envs, seed=config.seed, device=config.device, backend=config.backend,
                   vectorization=config.vectorization, **config.env_options)
    if config.normalize_obs:
        env = NormalizeObservation(env)
    if config.normalize_reward:
        env = NormalizeReward(env, gamma=getattr(config, "gamma", 0.99))
    return env


class Runner:
    """Trains ``agent`` to ``agent.config.steps`` environment steps, writing into ``run_dir``.

    ``resume`` is the payload of a ``checkpoint.pt``; the run then continues exactly where that
    checkpoint was taken (classic-control envs restore their own state and RNG too).
    """

    def __init__(self, agent, run_dir: str | os.PathLike | None = None, progress: bool = True,
                 resume: dict[str, Any] | None = None):
        self.agent = agent
        self.config = agent.config
        self.run_dir = Path(run_dir) if run_dir is not None else default_run_dir(self.config, agent.name)
        self.progress = progress
        self.resume = resume

    def run(self) -> dict[str, Any]:
        threads = torch.get_num_threads()
        if self.config.torch_threads:
            torch.set_num_threads(self.config.torch_threads)
        try:
            return self._run()
        finally:
            torch.set_num_threads(threads)

    def _run(self) -> dict[str, Any]:
        agent, cfg = self.agent, self.config
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.json").write_text(json.dumps({"agent": agent.name, **cfg.to_dict()}, indent=2) + "\n")
        env = make_train_env(cfg)
        agent.setup_training(env.num_envs)
        step, elapsed, obs = 0, 0.0, None
        if self.resume is not None:
            step, elapsed, obs = self._restore(env, self.resume)
        else:
            seed_everything(cfg.seed)
            obs = env.reset(seed=cfg.seed)
        obs_stats = env.stats if isinstance(env, NormalizeObservation) else None
        eval_env = make_eval_env(cfg, obs_stats)
        logger = Logger(self.run_dir, cfg.steps, start_step=step, elapsed=elapsed, progress=self.progress)
        start_step, start_time = step, time.perf_counter()
        next_log = (step // cfg.log_every + 1) * cfg.log_every
        next_eval = (step // cfg.eval_every + 1) * cfg.eval_every if cfg.eval_every else None
        next_checkpoint = (step // cfg.checkpoint_every + 1) * cfg.checkpoint_every if cfg.checkpoint_every else None
        episodes = _EpisodeTally(env.device)
        metrics: dict[str, torch.Tensor] = {}
        try:
            while step < cfg.steps:
                action, env_action, extras = agent.rollout_action(obs, step)
                next_obs, reward, terminated, truncated, info = env.step(env_action)
                agent.observe(obs, action, reward, info["final_obs"], terminated, truncated, extras)
                obs = next_obs
                step += env.num_envs
                episodes.add(info)
                update_metrics = agent.after_step(obs, step)
                if update_metrics is not None:
                    metrics = update_metrics
                logger.advance(env.num_envs)
                if step >= next_log:
                    next_log += cfg.log_every * max(1, (step - next_log) // cfg.log_every + 1)
                    sps = (step - start_step) / max(time.perf_counter() - start_time, 1e-9)
                    logger.log(step, {**{k: float(v) for k, v in metrics.items()}, **episodes.flush(),
                                      "charts/sps": sps})
                if next_eval is not None and step >= next_eval:
                    next_eval += cfg.eval_every * max(1, (step - next_eval) // cfg.eval_every + 1)
                    self._evaluate(eval_env, logger, step)
                if next_checkpoint is not None and step >= next_checkpoint and agent.at_boundary():
                    next_checkpoint += cfg.checkpoint_every * max(1, (step - next_checkpoint) // cfg.checkpoint_every + 1)
                    self._checkpoint(env, obs, step, logger.elapsed)
        except KeyboardInterrupt:
            if agent.at_boundary():
                self._checkpoint(env, obs, step, logger.elapsed)
            logger.close()
            raise
        train_sps = (step - start_step) / max(time.perf_counter() - start_time, 1e-9)
        returns = self._evaluate(eval_env, logger, step)
        self._checkpoint(env, obs, step, logger.elapsed)
        summary = {"env": cfg.env, "agent": agent.name, "seed": cfg.seed, "steps": step,
                   "eval_return_mean": float(np.mean(returns)), "eval_return_std": float(np.std(returns)),
                   "eval_returns": [float(r) for r in returns], "wall_time_s": round(logger.elapsed, 2),
                   "sps": round(train_sps, 1),
                   "run_dir": str(self.run_dir)}
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        logger.close()
        env.close()
        eval_env.close()
        return summary

    def _evaluate(self, eval_env: VecEnv, logger: Logger, step: int) -> np.ndarray:
        video = self.run_dir / "videos" / f"eval_step_{step}.gif" if self.config.capture_video else None
        returns = evaluate(self.agent, eval_env, video_path=video)
        logger.log(step, {"eval/return_mean": float(np.mean(returns)), "eval/return_std": float(np.std(returns))})
        return returns

    def _checkpoint(self, env: VecEnv, obs: torch.Tensor, step: int, elapsed: float) -> None:
        payload = self.agent.payload()
        payload["training"] = self.agent.training_state()
        if self.agent.aux is not None:
            payload["training"]["aux"] = self.agent.aux.training_state()
        payload["runner"] = {"step": step, "elapsed": elapsed, "obs": obs.cpu(), "env": env.state_dict(),
                             "rng": rng_state()}
        save_atomic(payload, self.run_dir / CHECKPOINT)

    def _restore(self, env: VecEnv, payload: dict[str, Any]) -> tuple[int, float, torch.Tensor]:
        self.agent.load_training_state(payload["training"])
        if self.agent.aux is not None:
            self.agent.aux.load_training_state(payload["training"]["aux"])
        runner = payload["runner"]
        obs = env.reset(seed=self.config.seed)
        env.load_state_dict(runner["env"])
        if env.resumable:
            obs = runner["obs"].to(env.device)
        set_rng_state(runner["rng"])
        return runner["step"], runner["elapsed"], obs


class _EpisodeTally:
    """Sums finished episodes' returns and lengths on the device; read once per log line."""

    def __init__(self, device: torch.device):
        self.sums = torch.zeros(3, dtype=torch.float64, device=device)

    def add(self, info: dict[str, torch.Tensor]) -> None:
        done = info["episode_done"]
        self.sums += torch.stack([done.sum(), (info["episode_return"] * done).sum(),
                                  (info["episode_length"] * done).sum()]).double()

    def flush(self) -> dict[str, float]:
        count, returns, lengths = self.sums.tolist()
        self.sums.zero_()
        if count == 0:
            return {}
        return {"charts/episodic_return": returns / count, "charts/episodic_length": lengths / count,
                "charts/episodes": count}
