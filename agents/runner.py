"""The one training loop every agent runs through: collect, update, log, evaluate, checkpoint."""
from __future__ import annotations

import json
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.checkpoint import rng_state, seed_everything, set_rng_state
from agents.compilation import compile_env_step
from agents.denormals import denormals_flushed
from agents.evaluation import evaluate, make_eval_env
from agents.host_allocator import keep_freed_host_memory
from agents.interrupts import StopRequest
from agents.logger import Logger
from agents.run_lock import exclusive_run_folder
from envs import env_file_name, make_env
from envs.vec_env import VecEnv
from representation.files import save_atomic
from wrappers.normalize import NormalizeObservation, NormalizeReward, normalization_stats

CHECKPOINT = "checkpoint.pt"
SUMMARY = "summary.json"
# In a seed's folder kept apart from its multi-seed run's folder: where that folder is, relative to
# the seed's (the joint checkpoint.pt there resumes the seed).
JOINT_RUN = "joint_run.json"
# The agent of a seed's best evaluation so far (``Runner._keep_if_best``).
BEST_AGENT = "best_agent.pt"


def default_run_dir(config, agent_name: str, seeds: list[int]) -> Path:
    """``runs/ENV__AGENT__SEED__TIME``, with a suffix where a run of the same second exists."""
    env = env_file_name(config.env)
    seed = str(seeds[0]) if len(seeds) == 1 else f"seeds{seeds[0]}-{seeds[-1]}"
    base = Path("runs") / f"{env}__{agent_name}__{seed}__{int(time.time())}"
    folder, copy = base, 1
    while folder.exists():
        copy += 1
        folder = base.with_name(f"{base.name}_{copy}")
    return folder


def holds_a_run(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a run that can be resumed or has finished (its checkpoint or
    summary), which a new run would overwrite. The logs of a run that stopped before its first
    checkpoint do not count: a new run there starts them afresh (see ``Logger``)."""
    folder = Path(folder)
    return (folder / CHECKPOINT).exists() or (folder / SUMMARY).exists() or any(folder.glob(f"seed_*/{SUMMARY}"))


def make_train_env(config, seeds: list[int] | None = None) -> VecEnv:
    """``config.num_envs`` envs, or that many per seed in the seed groups of a multi-seed run."""
    seeds = seeds or [config.seed]
    options = dict(config.env_options)
    if config.env_batch_size:
        options["batch_size"] = config.env_batch_size
    env = make_env(config.env, config.num_envs * len(seeds), seed=seeds[0] if len(seeds) == 1 else seeds,
                   device=config.device, backend=config.backend, vectorization=config.vectorization, **options)
    groups = len(seeds) if len(seeds) > 1 else None  # each seed's envs normalised by their own statistics
    if config.normalize_obs:
        env = NormalizeObservation(env, groups=groups)
    if config.normalize_reward:
        env = NormalizeReward(env, gamma=getattr(config, "gamma", 0.99), groups=groups)
    return env


class Runner:
    """Trains ``agent`` to ``agent.config.steps`` environment steps, writing into ``run_dir``.

    ``resume`` is the payload of a ``checkpoint.pt``; the run then continues exactly where that
    checkpoint was taken (classic-control envs restore their own state and RNG too).

    A multi-seed agent (``agents.multi_seed``) trains its seeds together: ``steps`` counts each
    seed's own env steps, and every seed gets the directory ``run_dir/seed_S`` with its config,
    logs, evaluations, ``summary.json``, final ``agent.pt`` and ``best_agent.pt``, while
    ``run_dir/checkpoint.pt`` holds the joint state a resume needs. ``seed_dirs`` puts the seeds' directories elsewhere
    (one per seed, in the agent's seed order; ``scripts/compare.py`` keeps one folder per run).

    ``callback(step, metrics)`` sees every line logged (each seed's, with its ``seed`` among the
    metrics): the training metrics of each logging step and each evaluation's ``eval/*``. When it
    returns False the run ends after that step as it would at ``steps``: a final evaluation,
    ``summary.json`` and the checkpoint, from which ``--resume`` continues it (Stable-Baselines3's
    callbacks stop ``learn`` the same way, e.g. at a reward threshold).
    """

    def __init__(self, agent, run_dir: str | os.PathLike | None = None, progress: bool = True,
                 resume: dict[str, Any] | None = None, seed_dirs: list[str | os.PathLike] | None = None,
                 report_evaluations: bool = False,
                 callback: Callable[[int, dict[str, float]], bool | None] | None = None):
        self.agent = agent
        self.callback = callback
        self.stopped_by_callback = False
        self.best: list[dict[str, float]] = []  # per seed: its best evaluation's step and mean, if any
        self.config = agent.config
        self.seeds: list[int] = getattr(agent, "seeds", [self.config.seed])
        self.run_dir = Path(run_dir) if run_dir is not None else default_run_dir(self.config, agent.name, self.seeds)
        self.progress = progress
        self.report_evaluations = report_evaluations
        self.resume = resume
        if seed_dirs is not None and (len(seed_dirs) != len(self.seeds) or not hasattr(agent, "seeds")):
            raise ValueError(f"seed_dirs needs one directory per seed of a multi-seed agent, got {len(seed_dirs)} "
                             f"for seeds {self.seeds}")
        self._seed_dirs = [Path(path) for path in seed_dirs] if seed_dirs is not None else None
        for folder in (self.run_dir, *self.seed_dirs()):
            if folder.exists() and not folder.is_dir():
                raise ValueError(f"run folder '{folder}' is a file")

    def seed_dirs(self) -> list[Path]:
        if self._seed_dirs is not None:
            return self._seed_dirs
        if len(self.seeds) == 1:
            return [self.run_dir]
        return [self.run_dir / f"seed_{seed}" for seed in self.seeds]

    def run(self) -> dict[str, Any]:
        """Trains; returns the summary (of the first seed, for a multi-seed agent: see ``run_seeds``)."""
        return self.run_seeds()[0]

    def run_seeds(self) -> list[dict[str, Any]]:
        """Trains; returns one summary per seed."""
        keep_freed_host_memory()
        threads = torch.get_num_threads()
        if self.config.torch_threads:
            torch.set_num_threads(self.config.torch_threads)
        try:
            with exclusive_run_folder(self.run_dir), denormals_flushed():
                return self._run()
        finally:
            torch.set_num_threads(threads)

    def _run(self) -> list[dict[str, Any]]:
        agent, cfg, seeds = self.agent, self.config, self.seeds
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for seed, seed_dir in zip(seeds, self.seed_dirs()):
            seed_dir.mkdir(parents=True, exist_ok=True)
            (seed_dir / "config.json").write_text(
                json.dumps({"agent": agent.name, **cfg.to_dict(), "seed": seed}, indent=2) + "\n")
            # A run under way has no summary: that of a shorter budget, which a resume takes further,
            # would read as this run's result until it ends.
            (seed_dir / SUMMARY).unlink(missing_ok=True)
            if self.resume is None:  # nor the best agent of a run that stopped before its first checkpoint
                (seed_dir / BEST_AGENT).unlink(missing_ok=True)
            if seed_dir != self.run_dir:
                (seed_dir / JOINT_RUN).write_text(
                    json.dumps({"run_dir": os.path.relpath(self.run_dir, seed_dir)}) + "\n")
        env = make_train_env(cfg, seeds)
        if cfg.compile:
            compile_env_step(env, cfg.compile_mode)
        if self.resume is None:
            self._continue_normalization(env)
        agent.use_normalization(normalization_stats(env))
        envs_per_seed = env.batch_size // len(seeds)
        agent.setup_training(env.num_envs)
        step, elapsed, obs = 0, 0.0, None
        self.best = [{} for _ in seeds]
        if self.resume is not None:
            step, elapsed, obs = self._restore(env, self.resume)
        else:
            seed_everything(cfg.seed)
            obs = env.reset(seed=self._env_seed())
        eval_envs = [make_eval_env(replace(cfg, seed=seed), seed_agent.observation_stats)
                     for seed, seed_agent in zip(seeds, agent.seed_agents())]
        # Periodic evaluations step their envs as graphs too; a lone final one would spend more
        # compiling them than it saves (PPO's parallel preset on CartPole: evaluations of 10 envs
        # took 0.23-0.25 s eagerly and 0.09-0.14 s compiled, the two graphs 0.16 s to load from a
        # warm cache and seconds to compile from a cold one).
        for eval_env in eval_envs if cfg.compile and cfg.eval_every else ():
            compile_env_step(eval_env, cfg.compile_mode)
        loggers = [Logger(seed_dir, cfg.steps, start_step=step, elapsed=elapsed, progress=self.progress and k == 0,
                          report_evaluations=self.report_evaluations) for k, seed_dir in enumerate(self.seed_dirs())]
        start_step, start_time = step, time.perf_counter()
        next_log = (step // cfg.log_every + 1) * cfg.log_every
        next_eval = (step // cfg.eval_every + 1) * cfg.eval_every if cfg.eval_every else None
        next_checkpoint = (step // cfg.checkpoint_every + 1) * cfg.checkpoint_every if cfg.checkpoint_every else None
        episodes = _EpisodeTally(env.device, len(seeds))
        in_flight = _InFlight(env.num_envs) if env.batch_size < env.num_envs else None
        metrics: dict[str, torch.Tensor] = {}
        last_evaluation: tuple[int | None, list[np.ndarray]] = (None, [])  # its step and returns
        try:
            with StopRequest() as stop:
                while step < cfg.steps:
                    action, env_action, extras = agent.rollout_action(obs, step)
                    acting_envs = env.env_ids
                    next_obs, reward, terminated, truncated, info = env.step(env_action)
                    if in_flight is None:
                        agent.observe(obs, action, reward, info["final_obs"], terminated, truncated, extras)
                    else:  # the envs that came back are not the ones just acted on
                        transitions, env_ids = in_flight.exchange(acting_envs, obs, action, reward, terminated,
                                                                  truncated, info)
                        agent.observe(*transitions, extras, env_ids=env_ids)
                    obs = next_obs
                    step += envs_per_seed
                    episodes.add(info)
                    update_metrics = agent.after_step(obs, step)
                    if update_metrics is not None:
                        metrics = update_metrics
                    loggers[0].advance(envs_per_seed)
                    if step >= next_log:
                        next_log += cfg.log_every * max(1, (step - next_log) // cfg.log_every + 1)
                        sps = (step - start_step) / max(time.perf_counter() - start_time, 1e-9)
                        for k, (logger, tally) in enumerate(zip(loggers, episodes.flush())):
                            self._log(k, logger, step, {**_seed_metrics(metrics, k), **tally, "charts/sps": sps})
                    # (the last evaluation follows the loop)
                    if next_eval is not None and step >= next_eval and step < cfg.steps:
                        next_eval += cfg.eval_every * max(1, (step - next_eval) // cfg.eval_every + 1)
                        last_evaluation = (step, self._evaluate(eval_envs, loggers, step))
                    periodic = next_checkpoint is not None and step >= next_checkpoint
                    if periodic:
                        next_checkpoint += cfg.checkpoint_every * max(
                            1, (step - next_checkpoint) // cfg.checkpoint_every + 1)
                    if periodic or stop.requested:  # Ctrl-C: this step is whole, so its checkpoint is exact
                        self._checkpoint(env, obs, step, loggers[0].elapsed)
                    if stop.requested:
                        raise KeyboardInterrupt
                    if self.stopped_by_callback:
                        break
        except KeyboardInterrupt:  # a second Ctrl-C stops at once: the last checkpoint stays
            for logger in loggers:
                logger.close()
            raise
        train_sps = (step - start_step) / max(time.perf_counter() - start_time, 1e-9)
        # (a callback that stopped the run at an evaluation's step: that evaluation is the last)
        all_returns = (last_evaluation[1] if last_evaluation[0] == step
                       else self._evaluate(eval_envs, loggers, step))
        self._checkpoint(env, obs, step, loggers[0].elapsed)
        summaries = []
        for seed, seed_dir, seed_agent, returns, logger, best in zip(seeds, self.seed_dirs(), agent.seed_agents(),
                                                                       all_returns, loggers, self.best):
            summary = {"env": cfg.env, "agent": agent.name, "seed": seed, "steps": step,
                       "eval_return_mean": float(np.mean(returns)), "eval_return_std": float(np.std(returns)),
                       "eval_returns": [float(r) for r in returns], "wall_time_s": round(logger.elapsed, 2),
                       "sps": round(train_sps, 1), "run_dir": str(seed_dir),
                       # (None where no evaluation was finite: a diverged run)
                       "best_eval_return_mean": best.get("eval_return_mean"), "best_eval_step": best.get("step")}
            if seed_dir != self.run_dir:  # the joint checkpoint is elsewhere: each seed's own agent here
                summary["num_seeds"] = len(seeds)
                seed_agent.save(seed_dir / "agent.pt")
            (seed_dir / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
            summaries.append(summary)
            logger.close()
        env.close()
        for eval_env in eval_envs:
            eval_env.close()
        return summaries

    def _continue_normalization(self, env: VecEnv) -> None:
        """An agent trained before on normalised observations or rewards (loaded from its file,
        or learning again) trains on from its statistics, as SB3's ``VecNormalize.load`` does."""
        for name, stats in normalization_stats(env).items():
            if name in self.agent.normalization:
                stats.load_state_dict(self.agent.normalization[name].state_dict())

    def _env_seed(self) -> int | list[int]:
        return self.seeds[0] if len(self.seeds) == 1 else self.seeds

    def _evaluate(self, eval_envs: list[VecEnv], loggers: list[Logger], step: int) -> list[np.ndarray]:
        all_returns = []
        for k, (seed_agent, eval_env, logger) in enumerate(zip(self.agent.seed_agents(), eval_envs, loggers)):
            video = logger.run_dir / "videos" / f"eval_step_{step}.gif" if self.config.capture_video else None
            returns = evaluate(seed_agent, eval_env, video_path=video)
            self._log(k, logger, step, {"eval/return_mean": float(np.mean(returns)),
                                        "eval/return_std": float(np.std(returns))})
            self._keep_if_best(k, seed_agent, logger.run_dir, step, float(np.mean(returns)))
            all_returns.append(returns)
        return all_returns

    def _log(self, k: int, logger: Logger, step: int, metrics: dict[str, float]) -> None:
        """Logs seed ``k``'s ``metrics`` and shows them to the callback."""
        logger.log(step, metrics)
        if self.callback is not None and self.callback(step, {"seed": self.seeds[k], **metrics}) is False:
            self.stopped_by_callback = True

    def _keep_if_best(self, k: int, seed_agent, seed_dir: Path, step: int, mean: float) -> None:
        """Saves seed ``k``'s agent as ``BEST_AGENT`` when ``mean`` beats its evaluations so far (the
        first of equal ones stays), as Stable-Baselines3's ``EvalCallback`` keeps its best model: an
        agent whose returns oscillate, as DQN's do on CartPole, keeps its best policy. With
        normalised observations the file holds the statistics of that moment."""
        if not mean > self.best[k].get("eval_return_mean", -float("inf")):
            return
        self.best[k] = {"step": step, "eval_return_mean": mean}
        save_atomic({**seed_agent.payload(), "best": self.best[k]}, seed_dir / BEST_AGENT)

    @staticmethod
    def _best_on_disk(seed_dir: Path, best: dict[str, float]) -> dict[str, float]:
        """The better of the checkpoint's record ``best`` and the ``BEST_AGENT`` file's: the file may
        come from evaluations after the checkpoint, made before a crash, that a resume on fresh
        episodes (Atari, or other evaluation settings) does not repeat."""
        try:
            on_disk = torch.load(seed_dir / BEST_AGENT, map_location="cpu", weights_only=True)["best"]
        except (OSError, KeyError, RuntimeError, pickle.UnpicklingError):
            return best
        return on_disk if on_disk["eval_return_mean"] > best.get("eval_return_mean", -float("inf")) else best

    def _checkpoint(self, env: VecEnv, obs: torch.Tensor, step: int, elapsed: float) -> None:
        payload = self.agent.payload()
        payload["training"] = self.agent.training_state()
        if self.agent.aux is not None:
            payload["training"]["aux"] = self.agent.aux.training_state()
        payload["runner"] = {"step": step, "elapsed": elapsed, "obs": obs.cpu(), "env": env.state_dict(),
                             "rng": rng_state(), "best": self.best}
        save_atomic(payload, self.run_dir / CHECKPOINT)

    def _restore(self, env: VecEnv, payload: dict[str, Any]) -> tuple[int, float, torch.Tensor]:
        try:
            self.agent.load_training_state(payload["training"])
        except (KeyError, ValueError, RuntimeError) as error:  # torch's own refusals of another layout
            raise ValueError(f"the checkpoint in {self.run_dir} holds training state this version of reprl cannot "
                             f"load ({error}); start a new run") from error
        if self.agent.aux is not None:
            self.agent.aux.load_training_state(payload["training"]["aux"])
        runner = payload["runner"]
        obs = env.reset(seed=self._env_seed())
        env.load_state_dict(runner["env"])
        if env.resumable:
            obs = runner["obs"].to(env.device)
        else:
            self.agent.episodes_restarted()
        set_rng_state(runner["rng"])
        self.best = [self._best_on_disk(seed_dir, best)
                     for seed_dir, best in zip(self.seed_dirs(), runner.get("best", self.best))]
        return runner["step"], runner["elapsed"], obs


class _InFlight:
    """For an asynchronous env: the observation each env acted from and the action it was sent,
    kept until that env's result comes back (in a later step, among other envs' results)."""

    def __init__(self, num_envs: int):
        self.num_envs = num_envs
        self.obs: torch.Tensor | None = None
        self.action: torch.Tensor | None = None

    def exchange(self, acting_envs: torch.Tensor, obs: torch.Tensor, action: torch.Tensor, reward: torch.Tensor,
                 terminated: torch.Tensor, truncated: torch.Tensor,
                 info: dict[str, torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Keeps what ``acting_envs`` acted from and were sent; returns the transitions of the envs
        that came back (``observe``'s first six arguments) and their ids."""
        if self.obs is None:
            self.obs = obs.new_zeros((self.num_envs, *obs.shape[1:]))
            self.action = action.new_zeros((self.num_envs, *action.shape[1:]))
        self.obs[acting_envs] = obs
        self.action[acting_envs] = action
        env_ids = info["env_id"]
        transitions = [self.obs[env_ids], self.action[env_ids], reward, info["final_obs"], terminated, truncated]
        if "first_obs" in info:  # envs back for the first time since a reset have no transition yet
            stepped = ~info["first_obs"]
            transitions, env_ids = [field[stepped] for field in transitions], env_ids[stepped]
        return transitions, env_ids


class _EpisodeTally:
    """Sums finished episodes' count, return and length per row of the step results on the
    device, in one fused add per step; summed per seed (rows are grouped by seed) once per log line."""

    def __init__(self, device: torch.device, num_seeds: int = 1):
        self.device, self.num_seeds = device, num_seeds
        self.sums: torch.Tensor | None = None  # [3, rows]: episodes, returns, lengths

    def add(self, info: dict[str, torch.Tensor]) -> None:
        done = info["episode_done"]
        if done.device.type == "cpu" and not bool(done.any()):
            return  # on the CPU the check costs nothing and most steps finish no episode
        finished = torch.stack([done, info["episode_return"], info["episode_length"]]) * done
        if self.sums is None:
            self.sums = torch.zeros(finished.shape, dtype=torch.float64, device=self.device)
        self.sums += finished

    def flush(self) -> list[dict[str, float]]:
        """Per seed: mean return and length of the episodes finished since the last flush."""
        if self.sums is None:
            return [{} for _ in range(self.num_seeds)]
        tallies = []
        for count, returns, lengths in self.sums.unflatten(1, (self.num_seeds, -1)).sum(2).T.tolist():
            tallies.append({} if count == 0 else {"charts/episodic_return": returns / count,
                                                  "charts/episodic_length": lengths / count,
                                                  "charts/episodes": count})
        self.sums.zero_()
        return tallies


def _seed_metrics(metrics: dict[str, torch.Tensor], seed_index: int) -> dict[str, float]:
    """Seed ``seed_index``'s value of each metric (per-seed metrics are ``[K]`` tensors)."""
    return {name: float(value[seed_index] if isinstance(value, torch.Tensor) and value.dim() else value)
            for name, value in metrics.items()}
