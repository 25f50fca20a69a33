"""What every on-policy agent shares: its settings, and collecting [T, N] rollouts for it.

PPO, A2C, TRPO and REINFORCE differ only in the advantage estimate and the policy step
(``train_on_rollout``); acting, storage, GAE and the truncation bootstrap live here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from gymnasium import spaces
from torch import Tensor

from agents.actor_critic import ActorCritic
from agents.config import AgentConfig, option
from agents.networks import BoxClipper
from replay.rollout_buffer import RolloutBuffer


@dataclass
class OnPolicyConfig(AgentConfig):
    learning_rate: float = option(2.5e-4, "Adam learning rate", positive=True)
    anneal_lr: bool = option(True, "decay the learning rate linearly to 0 over --steps")
    adam_eps: float = option(1e-5, "Adam epsilon", positive=True)
    num_steps: int = option(128, "steps per environment in each rollout", positive=True)
    gamma: float = option(0.99, "discount factor", bounds=(0.0, 1.0))
    gae_lambda: float = option(0.95, "GAE lambda (1: Monte-Carlo, 0: one-step TD)", bounds=(0.0, 1.0))
    norm_adv: bool = option(True, "normalise advantages within each minibatch")
    ent_coef: float = option(0.01, "entropy bonus coefficient", bounds=(0.0, float("inf")))
    vf_coef: float = option(0.5, "value loss coefficient", bounds=(0.0, float("inf")))
    max_grad_norm: float = option(0.5, "gradient clipping by global norm (0: off)", bounds=(0.0, float("inf")))
    shared_encoder: bool = option(False, "actor and critic share one encoder (usual for pixels)")
    log_std_init: float = option(0.0, "initial log standard deviation of Gaussian policies")

    def first_update(self) -> tuple[int, str]:
        return (self.num_envs * self.num_steps,
                f"one rollout of --num-envs {self.num_envs} x --num-steps {self.num_steps}")


class OnPolicyRollouts:
    """Runner hooks for agents with ``self.net`` (an ``ActorCritic``) and ``train_on_rollout()``."""

    config: OnPolicyConfig
    net: ActorCritic
    optimizer: torch.optim.Optimizer
    acting_methods = ("policy_inputs", "policy_inputs_and_value", "state_value")

    def init_actor_critic(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        self.net = ActorCritic(self.config, observation_space, action_space).to(self.device)
        # A critic on its own encoder is run once per rollout, on all its T x N observations in one
        # batch, instead of on N rows at every step (the parameters do not change within a
        # rollout, so the values are the same up to rounding); with a shared encoder the value
        # head on the acting pass's features costs almost nothing.
        self.values_per_rollout = not self.config.shared_encoder
        self.clip_action = BoxClipper(action_space, self.device) if isinstance(action_space, spaces.Box) else None
        self.buffer: RolloutBuffer | None = None
        self.iteration = 0

    @torch.no_grad()
    def act(self, obs: Tensor, explore: bool = True) -> Tensor:
        action = self.net.policy_distribution(obs).sample() if explore else self.greedy_action(obs)
        return self.clip_action(action) if self.clip_action is not None else action

    def greedy_action(self, obs: Tensor) -> Tensor:
        """The policy's most probable action per row of ``obs`` (evaluation's), from the
        distribution's inputs without building the distribution."""
        return self.net.policy.greedy(*self.policy_inputs(obs))

    def normalized_advantage(self, advantage: Tensor) -> Tensor:
        """Advantages standardised within the batch when ``norm_adv`` (a variance reduction all
        four agents offer; Engstrom et al. 2020 list it among PPO's implementation details)."""
        if not self.config.norm_adv or advantage.shape[-1] < 2:
            return advantage
        return (advantage - advantage.mean(-1, keepdim=True)) / (advantage.std(-1, keepdim=True) + 1e-8)

    def progress_remaining(self) -> float:
        """1 at the start of training, 0 at ``config.steps``: the linear schedules' factor."""
        cfg = self.config
        total_iterations = max(cfg.steps // (cfg.num_steps * self.buffer.num_envs // self.num_seeds), 1)
        return max(1.0 - self.iteration / total_iterations, 0.0)

    def anneal_learning_rate(self) -> None:
        if self.config.anneal_lr:
            for group in self.optimizer.param_groups:
                group["lr"] = self.config.learning_rate * self.progress_remaining()

    def train_on_rollout(self) -> dict[str, Tensor]:
        raise NotImplementedError

    def advantage_lambda(self) -> float:
        """The lambda ``finish`` runs GAE with (A2C's ``td`` and ``nstep`` advantages fix it)."""
        return self.config.gae_lambda

    def setup_training(self, num_envs: int) -> None:
        self.buffer = RolloutBuffer(self.config.num_steps, num_envs, self.observation_space, self.action_space,
                                    self.device, store_next_obs=self.aux is not None and self.aux.needs_next_obs)
        # (with --compile, agents.compilation; evaluation's acting too where evaluations recur, as in Runner)
        evaluation = ("greedy_action",) if self.config.eval_every else ()
        self.trace_methods("sampled_action", "rollout_state_values", *evaluation)

    @torch.no_grad()
    def rollout_action(self, obs: Tensor, step: int) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        action, log_prob, value = self.sampled_action(obs)
        extras = {"log_prob": log_prob} if value is None else {"log_prob": log_prob, "value": value}
        env_action = self.clip_action(action) if self.clip_action is not None else action
        return action, env_action, extras

    def sampled_action(self, obs: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """The network call and the draw of every step: an action per row of ``obs``, its
        log-probability, and V(obs) where values do not come once per rollout (else None)."""
        if self.values_per_rollout:
            dist_inputs, value = self.policy_inputs(obs), None
        else:
            dist_inputs, value = self.policy_inputs_and_value(obs)
        action, log_prob = self.net.policy.sample(*dist_inputs)
        return action, log_prob, value

    def policy_inputs(self, obs: Tensor) -> tuple[Tensor, ...]:
        """The network call of every step when values come once per rollout: the policy's
        distribution parameters."""
        return self.net.dist_inputs(obs)

    def policy_inputs_and_value(self, obs: Tensor) -> tuple[tuple[Tensor, ...], Tensor]:
        """The network call of every step otherwise: the distribution parameters and V(obs)."""
        return self.net.dist_inputs_and_value(obs)

    def representation_encoder(self) -> torch.nn.Module:
        return self.net.encoder

    def state_value(self, obs: Tensor) -> Tensor:
        """V(obs) ``[N]`` for bootstrapping."""
        return self.net.value(obs)

    def rollout_state_values(self, obs: Tensor) -> Tensor:
        """V of a rollout's observations ``[T, N, ...]`` -> ``[T, N]``, in one call."""
        return self.state_value(obs.flatten(0, 1)).unflatten(0, obs.shape[:2])

    def bootstrap_value(self, next_obs: Tensor) -> Tensor:
        """V(next_obs) ``[N]`` after the rollout's last step; where values come once per rollout,
        the stored steps' values are computed in the same call and written into the buffer."""
        if not self.values_per_rollout:
            return self.state_value(next_obs)
        values = self.rollout_state_values(torch.cat([self.buffer.obs, next_obs.unsqueeze(0)]))
        self.buffer.value.copy_(values[:-1])
        return values[-1]

    @torch.no_grad()
    def observe(self, obs, action, reward, next_obs, terminated, truncated, extras) -> None:
        self.buffer.add(obs, action, extras["log_prob"], extras.get("value"), reward, terminated, truncated,
                        self.final_values(next_obs, truncated),
                        next_obs=next_obs if self.buffer.store_next_obs else None)

    def final_values(self, next_obs: Tensor, truncated: Tensor) -> Tensor | None:
        """V of the true final observations ``next_obs`` where an episode was truncated (GAE reads
        them there alone), None where none was. On the CPU, reading which were costs nothing,
        and only their rows go through the critic (NaN elsewhere): at 1,024 envs a step with a
        truncation took 410 us for all rows; elsewhere every row does, unconditionally, so the
        step never waits for the device."""
        if next_obs.device.type != "cpu":
            return self.state_value(next_obs)
        ended = truncated.nonzero().squeeze(1)
        if not len(ended):
            return None
        values = torch.full(truncated.shape, float("nan"), device=next_obs.device)
        return values.index_copy_(0, ended, self.row_values(next_obs, ended))

    def row_values(self, obs: Tensor, rows: Tensor) -> Tensor:
        """V of the rows ``rows`` of ``obs``."""
        return self.state_value(obs.index_select(0, rows))

    def after_step(self, next_obs: Tensor, step: int) -> dict[str, Tensor] | None:
        if self.buffer.step < self.buffer.num_steps:
            return None
        with torch.no_grad():
            self.buffer.finish(self.bootstrap_value(next_obs), self.config.gamma, self.advantage_lambda())
        metrics = self.train_on_rollout()
        self.iteration += 1
        metrics["losses/explained_variance"] = self.buffer.explained_variance()
        metrics["charts/learning_rate"] = torch.tensor(self.optimizer.param_groups[0]["lr"])
        self.buffer.reset()
        return metrics

    def training_state(self, include_buffer: bool = True) -> dict[str, Any]:
        """The optimiser, the update count and the rollout under way, if any: a run resumed from a
        checkpoint taken mid-rollout goes on filling it, as the run that never stopped did."""
        state = {"optimizer": self.optimizer.state_dict(), "iteration": self.iteration}
        if include_buffer and self.buffer is not None and self.buffer.step > 0:
            state["rollout"] = self.buffer.state_dict()
        return state

    def load_training_state(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.iteration = state["iteration"]
        if "rollout" in state:
            self.buffer.load_state_dict(state["rollout"])

    def episodes_restarted(self) -> None:
        """Fresh episodes cannot continue the rollout under way: its steps are dropped."""
        super().episodes_restarted()
        self.buffer.reset()
