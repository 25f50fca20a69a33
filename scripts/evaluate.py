"""Evaluate a trained agent: ``python scripts/evaluate.py runs/CartPole-v1__ppo__1__... --episodes 20``.

Plays greedy episodes (the most probable action, or the one with the highest Q-value, as a
training run's own evaluations do) on fresh environments of the run's env id and prints the
mean, spread and range of their returns. PATH is a run folder (its ``checkpoint.pt``; for a
multi-seed run, a line per seed), one seed's folder of a multi-seed or grouped run (its
``agent.pt``), or an agent file: ``agent.save``'s, or a run's ``best_agent.pt`` (the agent of
its best evaluation). Atari episodes are whole games scored in raw game
points. ``--video FILE.gif`` saves the first episode as an animation (``FILE_seedS.gif`` per seed of a multi-seed run).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from agents.base import AGENT_FORMAT, Agent
from agents.checkpoint import load_checkpoint
from agents.cli import ArgumentParser, fail, parse_int
from agents.config import MAX_SEED
from agents.evaluation import EVAL_SEED_OFFSET, evaluate, make_eval_env
from agents.runner import CHECKPOINT, make_train_env
from wrappers.normalize import RunningMeanStd, observation_stats

AGENT_FILE = "agent.pt"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="evaluate.py", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", metavar="PATH",
                        help="run folder, a multi-seed run's seed_S folder, or agent file (e.g. RUN_DIR/best_agent.pt)")
    parser.add_argument("--episodes", type=parse_int, default=10,
                        help="episodes to play, all at once in parallel envs (default: 10)")
    parser.add_argument("--seed", type=parse_int,
                        help=f"seed of the episodes' environments, offset by {EVAL_SEED_OFFSET:,} "
                        "as in training (default: the run's seed, i.e. its own evaluations' episodes)")
    parser.add_argument("--device", help="torch device to play on (default: the run's)")
    parser.add_argument("--max-steps", type=parse_int, default=27_000,
                        help="steps after which an unfinished episode is scored as it stands (default: 27000)")
    parser.add_argument("--video", metavar="FILE.gif",
                        help="save the first episode as an animated GIF (a torch-native run is then evaluated on "
                             "gymnasium's version of its env, which draws frames: other episodes than its own)")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of a sentence")
    return parser


def agent_file(path: Path) -> Path:
    """The file PATH names: itself, or a run folder's checkpoint, else its final agent file."""
    if path.is_dir():
        for name in (CHECKPOINT, AGENT_FILE):
            if (path / name).is_file():
                return path / name
        raise ValueError(f"'{path}' holds neither {CHECKPOINT} nor {AGENT_FILE}")
    return path


def trained_observation_stats(player: Agent, payload: dict, config) -> RunningMeanStd | None:
    """The observation statistics ``player`` (the agent of one seed) trained on: its own, which
    the files a run writes and ``agent.save`` after training hold (``Agent.observation_stats``),
    or for a run's checkpoint from before agents held them, its training env's state; None for
    a run without normalised observations. ValueError for a file that holds neither."""
    if not config.normalize_obs or player.observation_stats is not None:
        return player.observation_stats
    if "runner" not in payload:
        raise ValueError("this agent was trained on normalised observations, whose statistics its file does not "
                         "hold: evaluate its run folder")
    env = make_train_env(config)
    try:
        env.reset(seed=config.seed)  # as a resumed run does: the envs exist before their state is loaded
        env.load_state_dict(payload["runner"]["env"])
        return observation_stats(env)
    finally:
        env.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.episodes < 1 or args.max_steps < 1:
            raise ValueError("--episodes and --max-steps must be >= 1")
        if args.seed is not None and not 0 <= args.seed <= MAX_SEED:
            raise ValueError(f"--seed must be in [0, {MAX_SEED}], got {args.seed}")
        video = Path(args.video) if args.video else None
        if video is not None:
            if video.suffix.lower() != ".gif":
                raise ValueError(f"--video {video}: the episode is saved as an animated GIF, name it FILE.gif")
            taken = next((folder for folder in video.parents if folder.exists() and not folder.is_dir()), None)
            if taken is not None:
                raise ValueError(f"--video {video}: '{taken}' is a file")
            try:
                video.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise ValueError(f"--video {video}: {error.strerror}") from None
        source = agent_file(Path(args.path))
        payload = load_checkpoint(source, AGENT_FORMAT)
        agent = Agent.from_payload(payload, device=args.device)
        # A multi-seed run's checkpoint plays each of its seeds' agents.
        players = list(zip(agent.seeds, agent.seed_agents())) if "seeds" in payload else [(agent.config.seed, agent)]
        config = replace(agent.config, eval_episodes=args.episodes, capture_video=video is not None)
        for seed, player in players:
            stats = trained_observation_stats(player, payload, config)
            if args.seed is not None:
                player.config.seed = args.seed
            filmed_to = (video if video is None or len(players) == 1
                         else video.with_name(f"{video.stem}_seed{seed}{video.suffix}"))
            print(play(player, seed, replace(config, seed=player.config.seed), stats, source, filmed_to, args))
    except ValueError as error:
        fail(str(error))
    return 0


def play(agent: Agent, seed: int, config, stats, source: Path, video: Path | None, args: argparse.Namespace) -> str:
    """Plays ``args.episodes`` greedy episodes of ``agent`` (the run's seed ``seed``); the line to print.
    The GIF is written under a temporary name and renamed once whole."""
    try:
        with warnings.catch_warnings():  # Gymnasium's warning comes before the env's own refusal, below
            warnings.filterwarnings("ignore", message=".*render_mode='rgb_array' that is not in the possible")
            env = make_eval_env(config, stats)
    except ValueError as error:  # an env that draws no frames refuses render_mode="rgb_array"
        if video is None:
            raise
        raise ValueError(f"--video {video}: {config.env} cannot be filmed ({error})") from None
    started = time.time()
    partial = None if video is None else video.with_name(f".{video.stem}.partial{video.suffix}")
    try:
        returns = evaluate(agent, env, video_path=partial, max_steps=args.max_steps)
        if partial is not None and partial.is_file():
            os.replace(partial, video)
    except OSError as error:  # the GIF's disk: full, read-only
        raise ValueError(f"--video {video}: cannot write the GIF ({error.strerror or error})") from None
    finally:
        env.close()
        if partial is not None:
            partial.unlink(missing_ok=True)
    filmed = video is not None and video.is_file() and video.stat().st_mtime >= started
    result = {"path": str(source), "agent": agent.name, "env": config.env, "seed": seed, "episode_seed": config.seed,
              "episodes": len(returns), "return_mean": float(np.mean(returns)), "return_std": float(np.std(returns)),
              "return_min": float(np.min(returns)), "return_max": float(np.max(returns)),
              "returns": [float(r) for r in returns]}
    if args.json:
        return json.dumps(result)
    return (f"{agent.name} on {config.env} (seed {seed}): return {result['return_mean']:.1f} ± "
            f"{result['return_std']:.1f} over {len(returns)} episodes (min {result['return_min']:.1f}, max "
            f"{result['return_max']:.1f}) <- {source}"
            + (f"; first episode saved to {video}" if filmed else "; the env drew no frames" if video else ""))


if __name__ == "__main__":
    sys.exit(main())
