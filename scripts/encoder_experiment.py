"""Which representation helps an agent: every encoder x auxiliary objective, over seeds.

  python scripts/encoder_experiment.py --agent dqn --env reprl/DistractorCartPole-v0 \\
      --encoders nature,impala --aux none,curl,deepmdp,dbc --seeds 3 --steps 200000 --out exp/distractor

An encoder is one trained from scratch (nature, impala, mlp, ...) or a pre-trained one, an
encoder file from scripts/pretrain.py or a trained agent's file or checkpoint.pt, as NAME=PATH or
as PATH named after its folder; it stays frozen, or
trains with the agent under --fine-tune:

  python scripts/encoder_experiment.py --agent dqn --env ALE/Pong-v5 --aux none \\
      --encoders nature,byol=runs/pong_byol/encoder.pt,runs/pong_ddpm/encoder.pt --seeds 3 --out exp/pong

Each cell of the grid is a named variant <encoder>+<aux> of the agent (agents/comparison/
variants.py), run over the seeds as ordinary run folders OUT/runs/<env>__<encoder>+<aux>__seed<k>/
by --workers local processes or by Ray tasks (--backend ray), like scripts/compare.py. An aux
level is one objective, none, or several joined by '+' (curl+dbc). Afterwards OUT/summary.md
opens with one row per cell (final evaluation return: mean over seeds with its 95%
stratified-bootstrap confidence interval, steps, wall time) before compare.py's sections;
OUT/summary.json holds every number and OUT/curves.png the learning curves with confidence
bands.

Running the same command again skips finished runs and resumes unfinished ones (a larger
--steps takes finished runs on to it). --set
key=value sets anything but encoder and aux for every cell (values are JSON where they parse as
JSON). The exit status is 1 if any run failed, 2 for bad arguments.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agents.cli import ArgumentParser, fail, parse_int
from agents.comparison.grid import parse_overrides, parse_seeds, plan_grid
from agents.comparison.variants import encoder_aux_variants
from agents.registry import AGENTS

from compare import DEFAULT_SEEDS, make_backend, run_and_report  # scripts/compare.py

FACTORS = {"encoder": "--encoders", "aux": "--aux"}  # the settings the grid varies, and their flags
SET_BY_THE_GRID = {**FACTORS, "encoder_checkpoint": "--encoders NAME=PATH", "freeze_encoder": "--fine-tune"}


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="encoder_experiment.py", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    grid = parser.add_argument_group("grid")
    grid.add_argument("--agent", required=True, help=f"the agent: {', '.join(sorted(AGENTS))}")
    grid.add_argument("--env", required=True, help="environment id, e.g. reprl/DistractorCartPole-v0")
    grid.add_argument("--encoders", default="nature,impala",
                      help="comma-separated encoders trained from scratch, or pre-trained encoder files as "
                           "NAME=PATH or PATH (named after their folder), frozen (default: nature,impala)")
    grid.add_argument("--fine-tune", action="store_true",
                      help="pre-trained encoders train with the agent instead of staying frozen")
    grid.add_argument("--aux", default="none,curl,deepmdp,dbc",
                      help="comma-separated auxiliary objectives, none, or several joined by '+' "
                           "(default: none,curl,deepmdp,dbc)")
    grid.add_argument("--seeds", default=str(DEFAULT_SEEDS),
                      help=f"a count N (seeds 0..N-1) or a comma-separated list (default: {DEFAULT_SEEDS})")
    grid.add_argument("--steps", type=parse_int, help="environment steps per run (default: the agent's)")
    grid.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="a setting of every cell (repeatable)")
    grid.add_argument("--out", required=True, help="output folder: runs/ and the report")
    execution = parser.add_argument_group("execution")
    execution.add_argument("--backend", choices=("local", "ray"), default="local",
                           help="local process pool or Ray (default: local)")
    execution.add_argument("--workers", type=parse_int, help="local processes (default: number of CPU cores)")
    execution.add_argument("--address", help="Ray cluster: auto or HOST:PORT (default: a local Ray instance)")
    execution.add_argument("--cpus-per-run", type=float, default=1.0,
                           help="CPUs per run; also its torch threads (default: 1)")
    execution.add_argument("--gpus-per-run", type=float, default=0.0,
                           help="GPUs per Ray task, e.g. 0.25 (default: 0); add --set device=cuda")
    execution.add_argument("--no-progress", action="store_true", help="no overall progress bar")
    return parser


def check_sets(assignments: list[str]) -> None:
    for assignment in assignments:
        key = assignment.partition("=")[0].strip().rpartition(".")[2]
        if key in SET_BY_THE_GRID:
            raise ValueError(f"--set {key}: the experiment sets '{key}' (use {SET_BY_THE_GRID[key]})")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    out = Path(args.out)
    try:
        variants, cells = encoder_aux_variants(args.agent, args.encoders, args.aux, args.fine_tune)
        check_sets(args.set)
        fields = {"backend": args.backend, "workers": args.workers, "address": args.address,
                  "cpus_per_run": args.cpus_per_run, "gpus_per_run": args.gpus_per_run}
        backend = make_backend({key: value for key, value in fields.items() if value is not None})
        steps = [f"steps={args.steps}"] if args.steps is not None else []
        overrides = parse_overrides(steps + args.set, [args.agent])
        grid = plan_grid([], [args.env], parse_seeds(args.seeds), overrides, out / "runs",
                         threads=max(1, int(args.cpus_per_run)), return_files=args.backend == "ray",
                         variants=variants)
        if not grid.tasks and not grid.finished:
            raise ValueError(f"no cell of the grid can run on {args.env}: {grid.incompatible[0][2]}")
    except ValueError as error:
        fail(str(error))
    factors = {"names": list(FACTORS), "cells": cells}
    return run_and_report(grid, backend, out, progress=not args.no_progress, factors=factors)


if __name__ == "__main__":
    sys.exit(main())
