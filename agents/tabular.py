"""Tabular Q-learning, SARSA and Expected SARSA on a ``[S, A]`` table, batched over N envs.

All three apply the one-step TD update (Sutton & Barto 2018, eq. 6.8, 6.5 and 6.9)

    Q(s, a) <- Q(s, a) + alpha * (r + gamma * (1 - terminated) * V(s') - Q(s, a))

and differ only in the value ``V(s')`` of the next state:

- Q-learning (Watkins 1989): ``max_a Q(s', a)``;
- SARSA (Rummery & Niranjan 1994): ``Q(s', a')`` with ``a'`` the behaviour policy's next action;
- Expected SARSA (van Seijen et al. 2009): ``sum_a pi(a | s') Q(s', a)`` under the behaviour policy.

Episode ends: at a termination the target is just ``r``. At a truncation the Runner hands over
the true final state and the target bootstraps from it; SARSA then has no executed next action, so
it uses an action drawn from the behaviour policy there (never executed): an unbiased sample of
Expected SARSA's value, keeping SARSA's target form.

SARSA's next action is chosen at the next ``rollout_action``: ``observe`` keeps the transition
pending and the next vector step completes it, choosing ``a'`` from the table before updating it
(the order of Sutton & Barto's SARSA box). Q-learning and Expected SARSA update in ``after_step``.

N envs update the same table in one batched step. The targets all come from the table as it was
before the step; then the N sample updates apply as if one after another in env order, so two
envs hitting the same (s, a) give ``(1 - alpha)^2 Q + alpha (1 - alpha) t_1 + alpha t_2``, the
result a single env would get from those two transitions (see ``apply_td_updates``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import Tensor

from agents.base import Agent
from agents.config import AgentConfig, option
from agents.exploration import boltzmann_probs, epsilon_greedy_probs, linear_schedule, sample_actions
from replay import Batch


@dataclass
class TabularConfig(AgentConfig):
    env: str = option("CliffWalking-v1", "Gymnasium id with a Discrete observation space (FrozenLake-v1, Taxi-v4, ...)")
    learning_rate: float = option(0.1, "step size alpha of the TD update", positive=True, bounds=(0.0, 1.0))
    lr_schedule: str = option("constant", "constant alpha, or linear decay to --final-learning-rate at --steps",
                              choices=("constant", "linear"))
    final_learning_rate: float = option(0.01, "alpha reached at --steps under --lr-schedule linear", bounds=(0.0, 1.0))
    gamma: float = option(0.99, "discount factor", bounds=(0.0, 1.0))
    exploration: str = option("epsilon_greedy", "behaviour policy: epsilon_greedy or boltzmann (softmax of Q / T)",
                              choices=("epsilon_greedy", "boltzmann"))
    start_e: float = option(1.0, "initial epsilon of epsilon-greedy", bounds=(0.0, 1.0))
    end_e: float = option(0.05, "final epsilon of epsilon-greedy", bounds=(0.0, 1.0))
    start_temperature: float = option(1.0, "initial Boltzmann temperature", positive=True)
    end_temperature: float = option(1.0, "final Boltzmann temperature (equal to the start: no decay)", positive=True)
    exploration_fraction: float = option(0.5, "fraction of --steps over which epsilon or the temperature decays "
                                              "linearly", bounds=(0.0, 1.0))
    initial_q: float = option(0.0, "initial value of every Q(s, a) (above the returns: optimistic exploration)")


class TabularTD:
    """The table, the behaviour policy and the Runner hooks shared by the three tabular agents."""

    algorithm: ClassVar[str]
    config_class = TabularConfig
    config: TabularConfig
    # Sutton & Barto (2018), Example 6.6: alpha 0.5, epsilon 0.1 fixed, undiscounted; the cliff
    # walk is deterministic, so one evaluation episode says everything.
    # FrozenLake and Taxi: values chosen here (decaying alpha and epsilon for FrozenLake's
    # slippery, noisy returns) and checked by tests/agents/test_tabular.py and a Taxi run.
    presets = {
        "CliffWalking-v1": dict(num_envs=1, learning_rate=0.5, lr_schedule="constant", gamma=1.0,
                                exploration="epsilon_greedy", start_e=0.1, end_e=0.1, steps=20_000,
                                eval_every=0, eval_episodes=1, log_every=1_000, torch_threads=1),
        "FrozenLake-v1": dict(num_envs=16, learning_rate=0.2, lr_schedule="linear", final_learning_rate=0.01,
                              gamma=0.99, exploration="epsilon_greedy", start_e=1.0, end_e=0.05,
                              exploration_fraction=0.5, steps=50_000, eval_every=10_000, eval_episodes=100,
                              log_every=5_000, torch_threads=1),
        "Taxi-v4": dict(num_envs=8, learning_rate=0.5, lr_schedule="linear", final_learning_rate=0.1, gamma=0.99,
                        exploration="epsilon_greedy", start_e=1.0, end_e=0.05, exploration_fraction=0.5,
                        steps=100_000, eval_every=25_000, eval_episodes=20, log_every=5_000, torch_threads=1),
    }

    def __init__(self, config: TabularConfig, observation_space: spaces.Space, action_space: spaces.Space):
        super().__init__(config, observation_space, action_space)
        for kind, space in (("observation", observation_space), ("action", action_space)):
            if not isinstance(space, spaces.Discrete):
                raise ValueError(f"{self.name} needs a discrete {kind} space (a finite table), got {space}")
        if config.normalize_obs:
            raise ValueError(f"{self.name} indexes its table by the raw state: --normalize-obs does not apply")
        if config.aux != "none":
            raise ValueError(f"{self.name} has no encoder for auxiliary objectives: --aux does not apply")
        self.obs_start, self.action_start = int(observation_space.start), int(action_space.start)
        self.num_actions = int(action_space.n)
        # A buffer, not a parameter: no autograd anywhere, and it travels in state_dict / checkpoints.
        self.register_buffer("q_table", torch.full((int(observation_space.n), self.num_actions),
                                                   float(config.initial_q), device=self.device))
        self._pending: dict[str, Tensor] | None = None  # the transition waiting for its update
        self._metrics: dict[str, Tensor] | None = None

    # ------------------------------------------------------------------- schedules
    def learning_rate(self, step: int) -> float:
        cfg = self.config
        if cfg.lr_schedule == "linear":
            return linear_schedule(cfg.learning_rate, cfg.final_learning_rate, cfg.steps, step)
        return cfg.learning_rate

    def exploration_value(self, step: int) -> float:
        """epsilon, or the Boltzmann temperature, at environment step ``step``."""
        cfg = self.config
        duration = cfg.exploration_fraction * cfg.steps
        if cfg.exploration == "boltzmann":
            return linear_schedule(cfg.start_temperature, cfg.end_temperature, duration, step)
        return linear_schedule(cfg.start_e, cfg.end_e, duration, step)

    def policy_probs(self, q: Tensor, step: int) -> Tensor:
        """The behaviour policy's action probabilities ``[B, A]`` for action values ``q``."""
        if self.config.exploration == "boltzmann":
            return boltzmann_probs(q, self.exploration_value(step))
        return epsilon_greedy_probs(q, self.exploration_value(step))

    # ----------------------------------------------------------------------- acting
    def state_index(self, obs: Tensor) -> Tensor:
        return obs.long() - self.obs_start

    def act(self, obs: Tensor, explore: bool = True, step: int | None = None) -> Tensor:
        """Greedy actions (first best action on ties), or behaviour-policy draws at ``step``.

        ``step`` defaults to the end of the schedules, where training leaves the policy.
        """
        q = self.q_table[self.state_index(obs)]
        if explore:
            action = sample_actions(self.policy_probs(q, self.config.steps if step is None else step))
        else:
            action = q.argmax(dim=1)
        return action + self.action_start

    # --------------------------------------------------------------------- learning
    def next_state_value(self, batch: Batch, step: int) -> Tensor:
        """``V(s')`` of the module docstring: what tells the three algorithms apart."""
        q_next = self.q_table[self.state_index(batch.next_obs)]
        if self.algorithm == "qlearning":
            return q_next.max(dim=1).values
        if self.algorithm == "expected_sarsa":
            return (self.policy_probs(q_next, step) * q_next).sum(dim=1)
        if batch.next_action is None:
            raise ValueError("a SARSA update needs batch.next_action, the action taken in the next state")
        return q_next.gather(1, batch.next_action.long().unsqueeze(1)).squeeze(1)

    def update(self, batch: Batch, step: int = 0) -> dict[str, Tensor]:
        """One batched TD update of the table with the schedules at ``step``.

        ``batch.obs``/``next_obs`` are observations as the env gives them, ``batch.action``
        action indices; ``batch.discount`` defaults to ``gamma``.
        """
        states, actions = self.state_index(batch.obs), batch.action.long()
        discount = self.config.gamma if batch.discount is None else batch.discount
        not_done = 1.0 - batch.terminated.to(self.q_table.dtype)
        reward = batch.reward.to(self.q_table.dtype)
        target = reward + discount * not_done * self.next_state_value(batch, step)
        q = self.q_table[states, actions]
        self.apply_td_updates(states * self.num_actions + actions, target, self.learning_rate(step))
        return {"losses/td_error": (target - q).abs().mean(), "losses/q_values": q.mean()}

    def apply_td_updates(self, keys: Tensor, target: Tensor, alpha: float) -> None:
        """``Q[k_i] <- Q[k_i] + alpha (t_i - Q[k_i])`` for i = 0..N-1 in order, as one batched write.

        k updates of one entry in a row leave ``(1 - alpha)^k Q + sum_i alpha (1 - alpha)^later_i t_i``
        (``later_i``: updates to the same entry after the i-th); an [N, N] match matrix finds the
        groups without sorting or host syncs. Every member of a group writes the same value.
        """
        flat = self.q_table.view(-1)
        same = keys.unsqueeze(1) == keys.unsqueeze(0)
        later = torch.triu(same, diagonal=1).sum(dim=1)
        keep = torch.full_like(target, 1.0 - alpha)
        contribution = alpha * keep.pow(later) * target
        flat[keys] = keep.pow(same.sum(dim=1)) * flat[keys] + same.to(target.dtype) @ contribution

    # ----------------------------------------------------------------- runner hooks
    def setup_training(self, num_envs: int) -> None:
        self._pending, self._metrics = None, None

    def rollout_action(self, obs: Tensor, step: int) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        states = self.state_index(obs)
        action = sample_actions(self.policy_probs(self.q_table[states], step))
        if self._pending is not None:  # only SARSA keeps a transition across steps
            self._metrics = self.update(self._sarsa_batch(obs, action, step), step)
            self._pending = None
        return action, action + self.action_start, {}

    def _sarsa_batch(self, obs: Tensor, action: Tensor, step: int) -> Batch:
        """The pending transitions with ``a'``: the action just chosen where the env went on from
        ``s'``, a policy draw at ``s'`` where it did not (truncation, or fresh episodes after a
        resume); terminations ignore it."""
        p = self._pending
        went_on = ~p["ended"] & (obs == p["next_obs"])
        drawn = sample_actions(self.policy_probs(self.q_table[self.state_index(p["next_obs"])], step))
        return Batch(obs=p["obs"], action=p["action"], reward=p["reward"], next_obs=p["next_obs"],
                     terminated=p["terminated"], next_action=torch.where(went_on, action, drawn))

    def observe(self, obs, action, reward, next_obs, terminated, truncated, extras) -> None:
        self._pending = {"obs": obs, "action": action, "reward": reward, "next_obs": next_obs,
                         "terminated": terminated, "ended": terminated | truncated}

    def after_step(self, next_obs: Tensor, step: int) -> dict[str, Tensor] | None:
        if self.algorithm != "sarsa":
            p = self._pending
            self._metrics = self.update(Batch(obs=p["obs"], action=p["action"], reward=p["reward"],
                                              next_obs=p["next_obs"], terminated=p["terminated"]), step)
            self._pending = None
        metrics, self._metrics = self._metrics, None
        if metrics is not None:
            name = "temperature" if self.config.exploration == "boltzmann" else "epsilon"
            metrics[f"charts/{name}"] = torch.tensor(self.exploration_value(step))
            metrics["charts/learning_rate"] = torch.tensor(self.learning_rate(step))
        return metrics

    def training_state(self, include_buffer: bool = True) -> dict[str, Any]:
        return {"pending": self._pending}

    def load_training_state(self, state: dict[str, Any]) -> None:
        pending = state["pending"]
        self._pending = None if pending is None else {k: v.to(self.device) for k, v in pending.items()}


class QLearning(TabularTD, Agent):
    name = "qlearning"
    algorithm = "qlearning"


class SARSA(TabularTD, Agent):
    name = "sarsa"
    algorithm = "sarsa"


class ExpectedSARSA(TabularTD, Agent):
    name = "expected_sarsa"
    algorithm = "expected_sarsa"
