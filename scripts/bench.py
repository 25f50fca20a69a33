"""Speed and memory of reprl against its peers, measured in one run on this machine.

Prints one JSON line per case. Learning cases train the same agent with the same
hyperparameters, env counts and torch threads in reprl and Stable-Baselines3 (``pip install -e
".[bench]"``) and report ``reprl_sps``, ``sb3_sps`` and ``ratio``, and on a CPU the eager
network-plus-env ceiling (``bench_cases/ceiling.py``). ``--repeats 3`` times the two sides of those
cases (and of the multi-seed ones) three times in alternation, for figures a drift of the machine's speed
moves less. ``--quick`` runs every case briefly (a smoke test, not a measurement).
``ppo_torch_warm`` times reprl's PPO against itself: warm rollouts, eager against ``--compile``.

``--device cuda`` puts reprl's side of the learning, torch-env, PPO-torch and multi-seed cases on
a GPU (rows say ``"device"``). SB3 then trains its CNN policies on the GPU too and its MLP
policies on the CPU, where SB3 itself says they belong (it warns when PPO's MLP is on a GPU).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from agents.cli import parse_int
from agents.config import check_device

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cases import atari_cases, ceiling, learning_cases, option_cost_cases, pg_cases  # noqa: E402

LEARNING = list(learning_cases.CASES)
POLICY_GRADIENT = list(pg_cases.CASES)
OPTION_COST = list(option_cost_cases.CASES)
MULTI_SEED = ["multiseed", "multiseed_trpo", "multiseed_dqn", "multiseed_rainbow", "multiseed_sac"]
OTHER = ["atari_rollout", "atari_step_gap", "dqn_pong_async", "replay_memory", "per_sample", "torch_env",
         "ppo_torch_cartpole", "ppo_torch_warm", *MULTI_SEED, "ddpm_frames_allocator"]
ALL = LEARNING + POLICY_GRADIENT + OPTION_COST + OTHER
ON_ANY_DEVICE = LEARNING + ["torch_env", "ppo_torch_cartpole", "ppo_torch_warm", *MULTI_SEED]


def other_runnable_threads(samples: int = 11, interval_s: float = 0.05) -> int | None:
    """How many threads besides this one were ready to run, the median of ``samples`` reads of
    Linux's ``/proc/stat`` over about half a second; None where there is no such file. OpenMP's
    threads spin while they wait for each other, so beside other busy threads they lose their time
    slices: a case on several torch threads then runs many times slower (docs/performance.md)."""
    counts = []
    for _ in range(samples):
        try:
            with open("/proc/stat") as stat:
                running = next(line for line in stat if line.startswith("procs_running"))
        except (OSError, StopIteration):
            return None
        counts.append(int(running.split()[1]) - 1)
        time.sleep(interval_s)
    return int(statistics.median(counts))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(ALL), help=f"comma-separated cases (default: all): {', '.join(ALL)}")
    parser.add_argument("--quick", action="store_true", help="tiny budgets: checks the cases run, measures nothing")
    parser.add_argument("--compile", action="store_true",
                        help="train reprl's side of the learning cases and ppo_torch_cartpole with --compile "
                             "(rows say \"compile\")")
    parser.add_argument("--repeats", type=parse_int, default=1,
                        help="time the two sides this many times in alternation in the learning, policy-gradient, "
                             "PPO-torch and multi-seed cases; rows give medians and each pair's ratio (default: 1)")
    parser.add_argument("--device", default="cpu",
                        help=f"torch device of reprl's side (cpu, cuda, cuda:1); other than cpu only for: "
                             f"{', '.join(ON_ANY_DEVICE)} (default: cpu)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    cases = [c for c in args.cases.split(",") if c]
    unknown = sorted(set(cases) - set(ALL))
    if unknown:
        parser.error(f"unknown case(s): {', '.join(unknown)}")
    try:
        device = torch.device(args.device)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        parser.error(f"--device must be cpu or cuda[:N], got {args.device!r}")
    if device.type != "cpu":
        cpu_only = [c for c in cases if c not in ON_ANY_DEVICE]
        if cpu_only:
            parser.error(f"--device {args.device}: case(s) {', '.join(cpu_only)} run on the CPU only")
        try:
            check_device(args.device)  # a CUDA device this machine has
        except ValueError as error:
            parser.error(str(error))

    others = other_runnable_threads()
    if others:
        print(f"warning: {others} other thread(s) keep a core busy here: cases on several torch threads can run many "
              "times slower beside them (docs/performance.md); rows say \"other_threads_before\"", file=sys.stderr)

    def emit(row: dict) -> None:
        print(json.dumps({**row, "other_threads_before": others}), flush=True)

    learning = [c for c in cases if c in LEARNING]
    # The ceiling is eager CPU networks plus the env: a CPU figure only.
    cpu_ceiling = (lambda case, sps, steps: ceiling.ceiling(case, sps, steps, args.quick)) \
        if device.type == "cpu" else None
    for row in learning_cases.run(learning, args.quick, cpu_ceiling, compile=args.compile, device=device,
                                   repeats=args.repeats):
        emit({**row, "compile": args.compile})
    names = [c for c in cases if c in POLICY_GRADIENT]
    if names:
        for row in pg_cases.run(args.quick, names, compile=args.compile, ceiling=cpu_ceiling,
                                repeats=args.repeats):
            emit({**row, "compile": args.compile})
    names = [c for c in cases if c in OPTION_COST]
    if names:
        for row in option_cost_cases.run(names, args.quick):
            emit(row)
    if "atari_rollout" in cases:
        for row in atari_cases.run(args.quick):
            emit(row)
    if "atari_step_gap" in cases:
        for row in atari_cases.run_step_gap(args.quick):
            emit(row)
    if "dqn_pong_async" in cases:
        for row in atari_cases.run_async_dqn(args.quick):
            emit(row)
    if "replay_memory" in cases or "per_sample" in cases:
        from bench_cases import replay_cases

        for row in replay_cases.run(args.quick):
            if row["case"] in cases:
                emit(row)
    if "torch_env" in cases:
        from bench_cases import torch_env_cases

        for row in torch_env_cases.run(args.quick, device):
            emit(row)
    if "ppo_torch_cartpole" in cases:
        from bench_cases import ppo_torch_cases

        for row in ppo_torch_cases.run(args.quick, device, compile=args.compile, repeats=args.repeats):
            emit({**row, "compile": args.compile})
    if "ppo_torch_warm" in cases:
        from bench_cases import warm_rollout_cases

        for row in warm_rollout_cases.run(args.quick, device):
            emit(row)
    for case in (c for c in MULTI_SEED if c in cases):
        from bench_cases import multiseed_cases

        for row in multiseed_cases.run(case, args.quick, device, repeats=args.repeats):
            emit(row)
    if "ddpm_frames_allocator" in cases:
        from bench_cases import allocator_cases

        for row in allocator_cases.run(args.quick):
            emit(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
