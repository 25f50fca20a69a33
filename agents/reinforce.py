"""REINFORCE: Monte-Carlo policy gradient over whole episodes (Williams 1992; Sutton & Barto 2018,
section 13.3 and, with a baseline, 13.4).

The policy follows ``grad J = E[sum_t grad log pi(a_t|s_t) (G - b)]`` where ``G`` is the
discounted return-to-go ``G_t = sum_{k>=t} gamma^(k-t) r_k`` (``reward_to_go``, the causality
form) or the whole episode's return ``G_0`` (the original estimator), and the baseline ``b`` is
nothing, the batch mean of ``G``, or a learned state value ``V(s_t)`` fitted to ``G_t``.

Episodes are collected from N envs at once. The rollout ends as soon as ``episodes_per_update``
episodes have finished (or after ``num_steps`` steps per env); only episodes that both started
and ended inside it are used, so every estimate comes from complete episodes of the current
policy. The unfinished tails are dropped, as are episodes already under way when the rollout
began. Where the env truncates an episode, ``G`` is bootstrapped with ``V`` of the true final
observation under the value baseline and ends there otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from gymnasium import spaces
from torch import Tensor

from agents.base import Agent
from agents.config import option
from agents.on_policy import OnPolicyConfig, OnPolicyRollouts
from replay import Batch
from replay.gae import discounted_reward_to_go


@dataclass
class REINFORCEConfig(OnPolicyConfig):
    learning_rate: float = option(1e-3, "Adam learning rate", positive=True)
    anneal_lr: bool = option(False, "decay the learning rate linearly to 0 over --steps")
    num_steps: int = option(1000, "most steps per environment in one rollout", positive=True)
    episodes_per_update: int = option(16, "complete episodes that end a rollout", positive=True)
    reward_to_go: bool = option(True, "weight each action by the return after it (causality), not the episode's")
    baseline: str = option("value", "baseline subtracted from the return: none, mean (batch mean) or value "
                           "(learned V(s))", choices=("none", "mean", "value"))
    norm_adv: bool = option(False, "normalise the weights (return minus baseline) within each update")
    ent_coef: float = option(0.0, "entropy bonus coefficient", bounds=(0.0, float("inf")))
    vf_coef: float = option(0.5, "value loss coefficient (value baseline)", bounds=(0.0, float("inf")))
    max_grad_norm: float = option(0.0, "gradient clipping by global norm (0: off)", bounds=(0.0, float("inf")))

    def first_update(self) -> tuple[int, str]:
        return 0, ""  # a rollout ends with its episodes, whenever enough of them have finished


def complete_episode_mask(done: Tensor, fresh: Tensor) -> Tensor:
    """``[T, N]``: steps of episodes that start inside the rollout (or at its first step where
    ``fresh[e]``) and end inside it. ``done`` ``[T, N]`` marks each episode's last step."""
    done = done.to(torch.int64)
    started = (done.cumsum(0) - done > 0) | fresh.bool()[None]
    ends_later = done.flip(0).cumsum(0).flip(0) > 0
    return started & ends_later


def episode_weights(reward: Tensor, terminated: Tensor, truncated: Tensor, final_value: Tensor,
                    gamma: float, reward_to_go: bool) -> Tensor:
    """``G_t`` per step (``reward_to_go``) or the whole episode's ``G_0`` on every step of it.

    Only steps of episodes that end inside the rollout are meaningful (see
    ``complete_episode_mask``); truncated episodes are bootstrapped with ``final_value``.
    """
    returns = discounted_reward_to_go(reward, terminated, truncated, torch.zeros_like(reward[0]),
                                      final_value, gamma)
    if reward_to_go:
        return returns
    time = torch.arange(reward.shape[0], device=reward.device)[:, None].expand_as(reward)
    starts = torch.zeros_like(terminated, dtype=torch.bool)
    starts[0] = True
    starts[1:] = terminated[:-1] | truncated[:-1]
    episode_start = torch.where(starts, time, torch.zeros_like(time)).cummax(0).values
    return returns.gather(0, episode_start)


class REINFORCE(OnPolicyRollouts, Agent):
    name = "reinforce"
    config_class = REINFORCEConfig
    config: REINFORCEConfig
    compiled_methods = ("loss",)
    loss_batch_size_varies = True
    # No tuning suite publishes REINFORCE values for these envs: SB3's MlpPolicy (separate
    # 64-64 tanh actor and critic) with Adam at 1e-3 and the zoo's A2C env counts.
    presets = {
        "classic": dict(num_envs=8, num_steps=1000, episodes_per_update=16, gamma=0.99, learning_rate=1e-3,
                        baseline="value", norm_adv=True, shared_encoder=False, torch_threads=1,
                        encoder_options={"hidden_sizes": [64, 64], "activation": "tanh"}),
        "box": dict(num_envs=8, num_steps=1000, episodes_per_update=16, gamma=0.99, learning_rate=1e-3,
                    baseline="value", norm_adv=True, shared_encoder=False, torch_threads=1,
                    encoder_options={"hidden_sizes": [64, 64], "activation": "tanh"}),
    }

    def __init__(self, config: REINFORCEConfig, observation_space: spaces.Space, action_space: spaces.Space):
        super().__init__(config, observation_space, action_space)
        self.init_actor_critic(observation_space, action_space)
        trainable = [p for p in self.net.parameters() if p.requires_grad] + self.attach_auxiliary(self.net.encoder)
        self.optimizer = torch.optim.Adam(trainable, lr=config.learning_rate, eps=config.adam_eps)

    # ------------------------------------------------------------------ collection
    def setup_training(self, num_envs: int) -> None:
        OnPolicyRollouts.setup_training(self, num_envs)
        self.fresh = torch.ones(num_envs, dtype=torch.bool, device=self.device)  # episode began with the rollout
        self.in_rollout = self.fresh.clone()  # current episode began inside this rollout
        self.complete_episodes = torch.zeros((), dtype=torch.int64, device=self.device)
        self.steps_done = 0

    @torch.no_grad()
    def observe(self, obs, action, reward, next_obs, terminated, truncated, extras) -> None:
        OnPolicyRollouts.observe(self, obs, action, reward, next_obs, terminated, truncated, extras)
        done = terminated | truncated
        self.complete_episodes += (done & self.in_rollout).sum()
        self.in_rollout |= done

    def after_step(self, next_obs: Tensor, step: int) -> dict[str, Tensor] | None:
        buffer = self.buffer
        self.steps_done = step
        if buffer.step < buffer.num_steps and int(self.complete_episodes) < self.config.episodes_per_update:
            return None
        metrics = self.train_on_rollout() if int(self.complete_episodes) > 0 else None
        self.iteration += 1
        last_done = buffer.terminated[buffer.step - 1] | buffer.truncated[buffer.step - 1]
        self.fresh.copy_(last_done)
        self.in_rollout.copy_(last_done)
        self.complete_episodes.zero_()
        buffer.reset()
        return metrics

    def progress_remaining(self) -> float:
        """Rollouts vary in length, so the schedules follow environment steps."""
        return max(1.0 - self.steps_done / self.config.steps, 0.0)

    # -------------------------------------------------------------------- learning
    def rollout_batch(self) -> tuple[Batch, Tensor]:
        """The rollout's complete episodes as one ``Batch`` (``returns``: G_t, ``advantage``: the
        weight G - b) and the number of episodes in it."""
        cfg, buffer = self.config, self.buffer
        steps = slice(0, buffer.step)
        terminated, truncated = buffer.terminated[steps], buffer.truncated[steps]
        final_value = torch.nan_to_num(buffer.final_value[steps]) if cfg.baseline == "value" \
            else torch.zeros_like(buffer.final_value[steps])
        reward = buffer.reward[steps]
        mask = complete_episode_mask(terminated | truncated, self.fresh)
        returns_to_go = episode_weights(reward, terminated, truncated, final_value, cfg.gamma, True)[mask]
        weights = episode_weights(reward, terminated, truncated, final_value, cfg.gamma, cfg.reward_to_go)[mask]
        if self.values_per_rollout:
            with torch.no_grad():
                buffer.value[steps] = self.rollout_state_values(buffer.obs[steps])
        value = buffer.value[steps][mask]
        if cfg.baseline == "mean":
            weights = weights - weights.mean()
        elif cfg.baseline == "value":
            weights = weights - value
        # reward, terminated and next_obs: what auxiliary objectives read (DeepMDP's and DBC's models)
        batch = Batch(obs=buffer.obs[steps][mask], action=buffer.action[steps][mask],
                      log_prob=buffer.log_prob[steps][mask], value=value, returns=returns_to_go, advantage=weights,
                      reward=reward[mask], terminated=terminated[mask].float(),
                      next_obs=buffer.next_obs[steps][mask] if buffer.store_next_obs else None)
        return batch, ((terminated | truncated) & mask).sum()

    def update(self, batch: Batch) -> dict[str, Tensor]:
        (metrics,) = self.gradient_step(self.optimizer, batch, self.config.max_grad_norm, batch)
        return metrics

    def loss(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """``-mean_t(log pi(a_t|s_t) * advantage_t)`` (plus the value baseline's loss) and its
        detached terms."""
        cfg = self.config
        log_prob, entropy, value = self.net.evaluate_actions(batch.obs, batch.action)
        advantage = self.normalized_advantage(batch.advantage)
        policy_loss = -(advantage * log_prob).mean()
        entropy = entropy.mean()
        # A zero bonus leaves the entropy out of the loss, and so out of backward (it is only logged).
        loss = policy_loss - cfg.ent_coef * entropy if cfg.ent_coef else policy_loss
        value_loss = 0.5 * (value - batch.returns).square().mean()
        if cfg.baseline == "value":
            loss = loss + cfg.vf_coef * value_loss
        return loss, {"losses/policy_loss": policy_loss.detach(), "losses/value_loss": value_loss.detach(),
                      "losses/entropy": entropy.detach()}

    def train_on_rollout(self) -> dict[str, Tensor]:
        self.anneal_learning_rate()
        batch, episodes = self.rollout_batch()
        metrics = self.update(batch)
        metrics["charts/update_episodes"] = episodes
        metrics["charts/update_steps"] = torch.tensor(batch.obs.shape[0])
        metrics["charts/learning_rate"] = torch.tensor(self.optimizer.param_groups[0]["lr"])
        return metrics

    # -------------------------------------------------------------- checkpoints
    def training_state(self, include_buffer: bool = True) -> dict[str, Any]:
        return {**OnPolicyRollouts.training_state(self, include_buffer), "fresh": self.fresh.clone(),
                "in_rollout": self.in_rollout.clone(), "complete_episodes": self.complete_episodes.clone()}

    def load_training_state(self, state: dict[str, Any]) -> None:
        OnPolicyRollouts.load_training_state(self, state)
        self.fresh.copy_(state["fresh"])
        # (checkpoints before these two were written between rollouts, where they take these values)
        self.in_rollout.copy_(state.get("in_rollout", state["fresh"]))
        self.complete_episodes.fill_(state.get("complete_episodes", 0))

    def episodes_restarted(self) -> None:
        """The dropped rollout's bookkeeping goes too: every env starts an episode with the next one."""
        OnPolicyRollouts.episodes_restarted(self)
        self.fresh.fill_(True)
        self.in_rollout.fill_(True)
        self.complete_episodes.zero_()
