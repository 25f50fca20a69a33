"""Train an agent: ``python scripts/train.py --agent ppo --env CartPole-v1 --steps 100000``.

With no arguments, trains PPO on CartPole-v1 (well under a minute on 2 CPU cores) and prints the
evaluation return. ``--agent NAME --help`` lists every setting of that agent.
``--resume RUN_DIR`` continues a run from its last checkpoint: ``--steps`` may raise the total, and
``--device`` and the evaluation, logging and checkpoint settings may change; nothing else can.
A new run never starts in a ``--run-dir`` that already holds one.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agents.checkpoint import load_checkpoint
from agents.cli import ArgumentParser, add_config_flags, explicit_settings, fail, parse_int
from agents.config import CHANGEABLE_ON_RESUME, nothing_learned_warning
from agents.base import AGENT_FORMAT, Agent
from agents.multi_seed import build_multi_seed
from agents.presets import resolve_config
from agents.registry import AGENTS, agent_class
from agents.runner import CHECKPOINT, Runner, holds_a_run



def build_parser(agent_name: str | None) -> ArgumentParser:
    parser = ArgumentParser(prog="train.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agent", default="ppo", help=f"agent to train: {', '.join(sorted(AGENTS))} (default: ppo)")
    parser.add_argument("--run-dir", help="where to write config, logs, checkpoints (default: runs/ENV__AGENT__SEED__TIME)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its checkpoint.pt")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar; each evaluation is printed as a line instead (for logs and CI)")
    parser.add_argument("--num-seeds", type=parse_int, default=1, metavar="K",
                        help="train seeds SEED .. SEED+K-1 together in this process (PPO, A2C, TRPO, DQN or SAC on a torch-native env): "
                             "one batched run, RUN_DIR/seed_S per seed (default: 1)")
    if agent_name in AGENTS:
        add_config_flags(parser.add_argument_group(f"{agent_name} settings"), agent_class(agent_name).config_class)
    return parser


def given(argv: list[str], flag: str) -> bool:
    return any(arg == flag or arg.startswith(flag + "=") for arg in argv)


def resumed_runner(argv: list[str], run_dir: str) -> Runner:
    """A Runner continuing ``run_dir`` from its checkpoint, with the settings it may change."""
    if Path(run_dir).is_dir() and not (Path(run_dir) / CHECKPOINT).exists():
        raise ValueError(f"{run_dir} holds no {CHECKPOINT}: its run stopped before its first checkpoint, so "
                         f"nothing can be resumed; start it again with --run-dir {run_dir}")
    payload = load_checkpoint(Path(run_dir) / CHECKPOINT, AGENT_FORMAT)
    args = build_parser(payload["agent"]).parse_args(argv)
    settings = explicit_settings(args, agent_class(payload["agent"]).config_class)
    fixed = [flag for flag in ("--run-dir", "--num-seeds") if given(argv, flag)]
    fixed += ["--agent"] if given(argv, "--agent") and args.agent != payload["agent"] else []
    fixed += ["--" + name.replace("_", "-") for name in settings if name not in CHANGEABLE_ON_RESUME]
    if fixed:
        changeable = ", ".join("--" + name.replace("_", "-") for name in CHANGEABLE_ON_RESUME)
        raise ValueError(f"--resume continues the run with its own settings: {', '.join(fixed)} cannot change "
                         f"(only {changeable})")
    agent = Agent.from_payload(payload, device=settings.pop("device", None))
    for name, value in settings.items():
        setattr(agent.config, name, value)
    agent.config.validate()
    done = payload["runner"]["step"]
    if done >= agent.config.steps:
        raise ValueError(f"the run in {run_dir} has already trained {done} steps (--steps {agent.config.steps}): "
                         f"give a larger --steps to continue it")
    return Runner(agent, run_dir=run_dir, progress=not args.no_progress, resume=payload,
                  report_evaluations=args.no_progress)


def check_run_dir_is_free(run_dir: str | None) -> None:
    """Raises ValueError when ``run_dir`` already holds a run, which a new one would overwrite."""
    if run_dir is None:
        return
    if holds_a_run(run_dir):
        raise ValueError(f"{run_dir} already holds a run: continue it with --resume {run_dir}, "
                         f"or pick another --run-dir")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    pre, _ = build_parser(None).parse_known_args([a for a in argv if a not in ("-h", "--help")])
    try:
        if pre.resume:
            runner = resumed_runner(argv, pre.resume)
        else:
            agent_cls = agent_class(pre.agent)
            args = build_parser(pre.agent).parse_args(argv)
            if args.num_seeds < 1:
                raise ValueError(f"--num-seeds must be >= 1, got {args.num_seeds}")
            check_run_dir_is_free(args.run_dir)
            config = resolve_config(agent_cls, explicit_settings(args, agent_cls.config_class))
            agent = agent_cls.from_env(config.env, **config.to_dict())
            if args.num_seeds > 1:
                agent = build_multi_seed(agent_cls, config, agent.observation_space, agent.action_space,
                                         list(range(config.seed, config.seed + args.num_seeds)))
            runner = Runner(agent, run_dir=args.run_dir, progress=not args.no_progress,
                            report_evaluations=args.no_progress)
            warning = nothing_learned_warning(config)
            if warning:
                print(f"warning: {warning}", file=sys.stderr)
        summaries = runner.run_seeds()
    except ValueError as error:
        fail(str(error))
    except OSError as error:  # the disk: full, read-only, a path that cannot be made
        resumable = "runner" in locals() and (runner.run_dir / CHECKPOINT).is_file()
        where = f" (continue with --resume {runner.run_dir} once fixed)" if resumable else ""
        fail(f"{error}{where}")
    except KeyboardInterrupt:
        if "runner" not in locals():
            where = " before training started"
        elif (runner.run_dir / CHECKPOINT).is_file():
            where = f": continue with --resume {runner.run_dir}"
        else:
            where = f" before the first checkpoint: start again with --run-dir {runner.run_dir}"
        print(f"\ninterrupted{where}", file=sys.stderr)
        return 130
    for summary in summaries:
        best = ""
        best_mean = summary["best_eval_return_mean"]
        if best_mean is not None and not summary["eval_return_mean"] >= best_mean:
            best = (f"; best evaluation {summary['best_eval_return_mean']:.1f} at step {summary['best_eval_step']}, "
                    f"its agent in best_agent.pt")
        print(f"{summary['agent']} on {summary['env']} (seed {summary['seed']}): eval return "
              f"{summary['eval_return_mean']:.1f} ± {summary['eval_return_std']:.1f} after {summary['steps']} steps "
              f"({summary['wall_time_s']:.0f} s, {summary['sps']:.0f} steps/s) -> {summary['run_dir']}{best}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
