"""The eager CPU ceiling of a learning case: the steps/s its run would reach if nothing took time
but raw env stepping and the case's own network passes at the same batch sizes.

Each case is a ``Plan``: the raw env it steps and the passes it makes per env step once learning
starts (acting forwards, target forwards, and training passes of forward, backward and an Adam
step). Each pass is timed here, in eager PyTorch on the case's thread count, its network in
PyTorch's standard memory layout as every peer runs it. A run that reaches this ceiling spends
nothing on its own bookkeeping; going above it takes fewer or cheaper passes than a peer's
(reprl's channels-last conv weights, its large matrix products through oneDNN
(``representation.linear``), ``--compile``). The ratio a case can show against SB3 with
PyTorch's own kernels is at most ``ceiling_sps / sb3_sps``.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

from representation.encoders import NatureCNN

FRAMES = spaces.Box(0, 255, (4, 84, 84), np.uint8)


@dataclass(frozen=True)
class Pass:
    """``per_step`` passes per env step of ``network()`` on a batch of ``batch`` inputs; with
    ``train`` each is zero_grad, forward, backward of a scalar loss and an Adam step."""
    network: Callable[[], nn.Module]
    inputs: Callable[[int], Tensor]
    batch: int
    train: bool
    per_step: float


@dataclass(frozen=True)
class Plan:
    env_id: str
    num_envs: int
    threads: int  # torch threads, as both sides of the case run with
    warmup: int  # env steps of random actions before learning: env stepping only
    passes: tuple[Pass, ...]


class TwoMLPs(nn.Module):
    """Policy and value MLPs side by side (SB3's MlpPolicy for PPO and A2C: no shared layers)."""

    def __init__(self, in_dim: int, hidden: int, outputs: tuple[int, int], activation: type[nn.Module]):
        super().__init__()
        self.nets = nn.ModuleList(mlp(in_dim, hidden, out, activation) for out in outputs)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([net(x) for net in self.nets], dim=-1)


class ActorThroughCritics(nn.Module):
    """SAC's actor loss: the actor's squashed action fed with the state through both critics,
    whose weights take no gradient (the least a peer can do; SB3 computes theirs too)."""

    def __init__(self, actor: nn.Module, critics: nn.Module, action_dim: int):
        super().__init__()
        self.actor, self.critics, self.action_dim = actor, critics.requires_grad_(False), action_dim

    def forward(self, obs: Tensor) -> Tensor:
        action = self.actor(obs)[:, :self.action_dim].tanh()
        return self.critics(torch.cat([obs, action], dim=-1))


def mlp(in_dim: int, hidden: int, out_dim: int, activation: type[nn.Module]) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), activation(), nn.Linear(hidden, hidden), activation(),
                         nn.Linear(hidden, out_dim))


def nature_q(actions: int = 6) -> nn.Module:
    return nn.Sequential(NatureCNN(FRAMES), nn.Linear(512, actions + 1)).to(memory_format=torch.contiguous_format)


def vectors(dim: int) -> Callable[[int], Tensor]:
    return lambda batch: torch.randn(batch, dim)


def frames(batch: int) -> Tensor:
    return torch.randint(0, 256, (batch, *FRAMES.shape), dtype=torch.uint8)


def on_policy_plan(env_id: str, network: Callable[[], nn.Module], inputs: Callable[[int], Tensor],
                   hp: dict[str, Any]) -> Plan:
    """PPO and A2C: an acting pass over all envs each vector step; per rollout of T steps of N
    envs, ``epochs x minibatches`` training passes on ``T N / minibatches`` samples."""
    num_envs, num_steps = hp["num_envs"], hp["num_steps"]
    minibatches, epochs = hp.get("num_minibatches", 1), hp.get("update_epochs", 1)
    rollout = num_envs * num_steps
    return Plan(env_id, num_envs, hp["torch_threads"], 0, (
        Pass(network, inputs, num_envs, False, 1 / num_envs),
        Pass(network, inputs, rollout // minibatches, True, epochs * minibatches / rollout)))


def dqn_plan(env_id: str, network: Callable[[], nn.Module], inputs: Callable[[int], Tensor],
             hp: dict[str, Any]) -> Plan:
    """DQN on one env: after ``learning_starts`` random steps, an acting pass per step and, every
    ``train_frequency`` steps, ``gradient_steps`` training passes plus as many target forwards."""
    assert hp["num_envs"] == 1, "the DQN cases step one env"
    rate = hp["gradient_steps"] / hp["train_frequency"]
    return Plan(env_id, 1, hp["torch_threads"], hp["learning_starts"], (
        Pass(network, inputs, 1, False, 1.0),
        Pass(network, inputs, hp["batch_size"], True, rate),
        Pass(network, inputs, hp["batch_size"], False, rate)))


def sac_plan(env_id: str, obs_dim: int, action_dim: int, hp: dict[str, Any]) -> Plan:
    """SAC (SB3's MlpPolicy, 256-256 ReLU): per update, the twin critics trained, the actor and
    the target critics run forward on the next states, and the actor trained through the critics."""
    assert hp["num_envs"] == 1 and hp["train_frequency"] == hp["gradient_steps"] == 1, "one update per env step"
    batch = hp["batch_size"]

    def actor() -> nn.Module:
        return mlp(obs_dim, 256, 2 * action_dim, nn.ReLU)

    def critics() -> nn.Module:
        return TwoMLPs(obs_dim + action_dim, 256, (1, 1), nn.ReLU)

    return Plan(env_id, 1, hp["torch_threads"], hp["learning_starts"], (
        Pass(actor, vectors(obs_dim), 1, False, 1.0),
        Pass(critics, vectors(obs_dim + action_dim), batch, True, 1.0),
        Pass(actor, vectors(obs_dim), batch, False, 1.0),
        Pass(critics, vectors(obs_dim + action_dim), batch, False, 1.0),
        Pass(lambda: ActorThroughCritics(actor(), critics(), action_dim), vectors(obs_dim), batch, True, 1.0)))


def plan(case: str) -> Plan:
    from bench_cases import learning_cases, pg_cases

    cases = {**learning_cases.CASES, **pg_cases.CASES}
    _, kind, env_id, hp, _ = cases[case]
    if kind == "sac":
        return sac_plan(env_id, 3, 1, hp)
    if "Pong" in env_id:
        network, inputs = nature_q, frames
    elif kind == "dqn":
        network, inputs = (lambda: mlp(4, 256, 2, nn.ReLU)), vectors(4)
    else:
        network, inputs = (lambda: TwoMLPs(4, 64, (2, 1), nn.Tanh)), vectors(4)
    return (dqn_plan if kind == "dqn" else on_policy_plan)(env_id, network, inputs, hp)


def raw_vector_env(env_id: str, num_envs: int) -> gym.vector.VectorEnv:
    """The bare vector env, reset: ale-py's ``AtariVectorEnv`` with the same preprocessing as
    reprl's for Atari, gymnasium's sync vector env otherwise."""
    if "Pong" in env_id:
        from ale_py import AtariVectorEnv

        env = AtariVectorEnv("pong", num_envs, autoreset_mode="SameStep", reward_clipping=False)
    else:
        env = gym.make_vec(env_id, num_envs, vectorization_mode="sync")
    env.reset(seed=0)
    return env


def raw_env_sps(env_id: str, num_envs: int, steps: int) -> float:
    """Env steps per second of the bare vector env on actions drawn in advance."""
    env = raw_vector_env(env_id, num_envs)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(steps)]
    start = time.perf_counter()
    for action in actions:
        env.step(action)
    elapsed = time.perf_counter() - start
    env.close()
    return steps * num_envs / elapsed


def pass_seconds(step: Pass, repeats: int) -> float:
    """Seconds per pass, after one untimed warm-up pass."""
    net = step.network()
    x = step.inputs(step.batch)
    if step.train:
        optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-4)

        def run() -> None:
            optimizer.zero_grad()
            net(x).float().square().mean().backward()
            optimizer.step()
    else:
        def run() -> None:
            with torch.no_grad():
                net(x)
    run()
    start = time.perf_counter()
    for _ in range(repeats):
        run()
    return (time.perf_counter() - start) / repeats


def ceiling_sps(case_plan: Plan, steps: int, quick: bool = False) -> float:
    """Steps/s of a ``steps``-step run of ``case_plan`` with nothing but env stepping and passes."""
    torch.set_num_threads(case_plan.threads)
    vector_steps = 20 if quick else 2_000 // case_plan.num_envs + 100
    env_seconds = 1 / raw_env_sps(case_plan.env_id, case_plan.num_envs, vector_steps)
    repeats = 2 if quick else (20 if "Pong" in case_plan.env_id else 200)
    learning_seconds = sum(p.per_step * pass_seconds(p, repeats) for p in case_plan.passes)
    warmup = min(case_plan.warmup, steps)
    return steps / (steps * env_seconds + (steps - warmup) * learning_seconds)


def ceiling(case: str, measured_sps: float, steps: int, quick: bool = False) -> dict:
    """The row fields of ``case``'s ceiling and the share of it ``measured_sps`` reached."""
    sps = ceiling_sps(plan(case), steps, quick)
    return {"ceiling_sps": round(sps, 1), "fraction_of_ceiling": round(measured_sps / sps, 3)}
