"""What an option costs in speed: the same agent, settings and env with the option on and off,
timed in one run, reported as ``ratio`` = SPS with the option / SPS without it.

- ``rainbow_pong``: DQN with every Rainbow component (double, dueling, noisy nets, prioritized
  replay, 3-step returns, C51) against plain DQN; the target is >= 0.70.
- ``dqn_curl_pong`` and ``ppo_dbc_pong``: DQN with CURL and PPO with DBC against the same agent
  without an auxiliary objective; the target is >= 0.60.

DQN starts learning after 1,000 steps of a 6,000-step run, so nearly all the timed steps train.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from agents import DQN, PPO
from bench_cases.learning_cases import DQN_PONG, PPO_PONG, reprl_sps

RAINBOW = dict(double=True, dueling=True, noisy=True, prioritized=True, n_step=3, distributional=True, atoms=51,
               v_min=-10.0, v_max=10.0)
DQN_TIMED = {**DQN_PONG, "learning_starts": 1_000}

CASES: dict[str, tuple[type, dict[str, Any], dict[str, Any], int, float]] = {
    "rainbow_pong": (DQN, DQN_TIMED, RAINBOW, 6_000, 0.70),
    "dqn_curl_pong": (DQN, DQN_TIMED, {"aux": "curl"}, 6_000, 0.60),
    "ppo_dbc_pong": (PPO, PPO_PONG, {"aux": "dbc"}, 12_288, 0.60),
}
ENV_ID = "PongNoFrameskip-v4"


def run(names: list[str], quick: bool = False) -> Iterator[dict]:
    """One row per case: ``base_sps`` (option off), ``sps`` (on), ``ratio`` and the ``target``."""
    for name in names:
        agent_cls, settings, option, steps, target = CASES[name]
        if quick:
            settings = {**settings, "learning_starts": 64} if agent_cls is DQN else settings
            steps = 128 if agent_cls is DQN else 2 * settings["num_envs"] * settings["num_steps"]
        base = reprl_sps(agent_cls, ENV_ID, steps, settings)
        with_option = reprl_sps(agent_cls, ENV_ID, steps, {**settings, **option})
        yield {"case": name, "option": option, "steps": steps, "torch_threads": settings["torch_threads"],
               "base_sps": round(base, 1), "sps": round(with_option, 1), "ratio": round(with_option / base, 3),
               "target": target}
