"""The GPU path: agents train with env, networks and buffers on a CUDA device, and the acting
step of the training loop never makes the host wait for the GPU. Skipped without CUDA."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from agents import A2C, DQN, PPO, SAC, TRPO
from agents.runner import _EpisodeTally, make_train_env
from replay.sum_tree import SumTree
from test_compile import assert_same_state, train_pair
from test_resume import crash_and_checkpoint, resume

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

SHORT = dict(device="cuda", backend="torch", eval_every=0, checkpoint_every=0, eval_episodes=1, log_every=10**9)


@pytest.mark.parametrize("agent_cls,env_id,options", [
    (PPO, "CartPole-v1", dict(num_envs=64, num_steps=16)),
    (A2C, "CartPole-v1", dict(num_envs=16)),
    (TRPO, "Pendulum-v1", dict(num_envs=16, num_steps=64)),
    (DQN, "CartPole-v1", dict(num_envs=8, learning_starts=256, preset="rainbow", v_min=0.0, v_max=100.0,
                              buffer_size=4096, batch_size=64)),
    (SAC, "Pendulum-v1", dict(num_envs=4, learning_starts=256, batch_size=64)),
])
def test_agents_train_and_resume_on_the_gpu(agent_cls, env_id, options, tmp_path) -> None:
    agent = agent_cls.from_env(env_id, steps=2048, **{**SHORT, "checkpoint_every": 512}, **options)
    payload = crash_and_checkpoint(agent, 1536, tmp_path)
    assert 0 < payload["runner"]["step"] < 2048
    resumed = resume(payload, tmp_path)
    assert resumed.device.type == "cuda"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] >= 2048 and np.isfinite(summary["eval_return_mean"])


@pytest.mark.parametrize("agent_cls,options,atol", [
    (PPO, dict(num_envs=256, num_steps=8, num_minibatches=4, update_epochs=2, steps=4096), 1e-4),
    # 48 gradient steps: Adam turns the round-off of gradients near zero into steps of the full
    # learning rate, so after a few hundred (two rounds of 128 per step of 8 envs at
    # train_frequency 4) the two runs' weights were 0.1 apart, on the CPU as on the GPU.
    (DQN, dict(num_envs=8, learning_starts=256, train_frequency=64, gradient_steps=4, buffer_size=2048,
               batch_size=64, steps=1024), 1e-5),
])
def test_compiled_agents_trace_their_whole_steps_on_the_gpu_and_train_like_eager(agent_cls, options, atol,
                                                                                   tmp_path):
    """``--compile`` on a GPU (``compiles_whole_steps_on_gpu``): the whole gradient step, acting,
    the rollout's values or a round's targets and the torch env's step are inductor graphs of
    Triton kernels (``agents.traced_graphs``), and the run learns what the eager one does, to the
    round-off of other kernels."""
    eager, compiled, graphs = train_pair(agent_cls, {**SHORT, **options}, tmp_path)
    assert graphs == 4
    assert_same_state(compiled, eager, atol=atol)


@pytest.mark.parametrize("agent_cls,options", [
    (PPO, dict(num_envs=256, num_steps=8)),
    (DQN, dict(num_envs=8, learning_starts=64, train_frequency=10**6)),
])
def test_acting_steps_never_synchronise(agent_cls, options) -> None:
    """What the Runner does every env step (act, step, store, tally episodes) queues GPU work
    without reading anything back: ``torch.cuda.set_sync_debug_mode("error")`` raises on any
    host synchronisation."""
    agent = agent_cls.from_env("CartPole-v1", steps=10**6, **SHORT, **options)
    env = make_train_env(agent.config)
    agent.setup_training(env.num_envs)
    episodes = _EpisodeTally(env.device)
    obs, step = env.reset(seed=0), 0

    def acting_step() -> None:
        nonlocal obs, step
        action, env_action, extras = agent.rollout_action(obs, step)
        next_obs, reward, terminated, truncated, info = env.step(env_action)
        agent.observe(obs, action, reward, info["final_obs"], terminated, truncated, extras)
        obs, step = next_obs, step + env.num_envs
        episodes.add(info)

    for _ in range(16):  # past DQN's random warm-up, into greedy acting
        acting_step()
        agent.after_step(obs, step)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(4):
            acting_step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert episodes.sums[0].sum().item() > 0  # episodes ended and were tallied on the device


def test_prioritized_sampling_on_the_gpu_matches_the_cpu() -> None:
    """The torch descent on the GPU finds the same leaves as the numpy one on the CPU."""
    generator = torch.Generator().manual_seed(0)
    priorities = torch.rand(100_000, generator=generator, dtype=torch.float64)
    targets = torch.rand(4096, generator=generator, dtype=torch.float64)
    cpu, gpu = SumTree(len(priorities)), SumTree(len(priorities), device="cuda")
    indices = torch.arange(len(priorities))
    cpu.update(indices, priorities)
    gpu.update(indices.cuda(), priorities.cuda())
    assert torch.equal(gpu.find(targets.cuda() * gpu.total).cpu(), cpu.find(targets * cpu.total))
