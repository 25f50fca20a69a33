"""PPO with the clipped surrogate objective (Schulman et al. 2017, eq. 7 and eq. 9)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from gymnasium import spaces
from torch import Tensor, nn

from agents.base import Agent
from agents.config import AgentConfig, option
from agents.networks import BoxClipper, build_encoder, linear, orthogonal_init, policy_head
from replay import Batch
from replay.rollout_buffer import RolloutBuffer


@dataclass
class PPOConfig(AgentConfig):
    learning_rate: float = option(2.5e-4, "Adam learning rate", positive=True)
    anneal_lr: bool = option(True, "decay the learning rate linearly to 0 over --steps")
    adam_eps: float = option(1e-5, "Adam epsilon", positive=True)
    num_steps: int = option(128, "steps per environment in each rollout", positive=True)
    gamma: float = option(0.99, "discount factor", bounds=(0.0, 1.0))
    gae_lambda: float = option(0.95, "GAE lambda (1: Monte-Carlo, 0: one-step TD)", bounds=(0.0, 1.0))
    num_minibatches: int = option(4, "minibatches per epoch", positive=True)
    update_epochs: int = option(4, "passes over each rollout", positive=True)
    norm_adv: bool = option(True, "normalise advantages within each minibatch")
    clip_coef: float = option(0.2, "surrogate clipping range epsilon", positive=True)
    anneal_clip: bool = option(False, "decay the clipping range linearly to 0 over --steps")
    clip_vloss: bool = option(True, "clip the value loss around the old values")
    ent_coef: float = option(0.01, "entropy bonus coefficient", bounds=(0.0, float("inf")))
    vf_coef: float = option(0.5, "value loss coefficient", bounds=(0.0, float("inf")))
    max_grad_norm: float = option(0.5, "gradient clipping by global norm (0: off)", bounds=(0.0, float("inf")))
    target_kl: float = option(0.0, "stop the epochs early once the approximate KL exceeds this (0: off)",
                              bounds=(0.0, float("inf")))
    shared_encoder: bool = option(False, "actor and critic share one encoder (usual for pixels)")
    log_std_init: float = option(0.0, "initial log standard deviation of Gaussian policies")


class ActorCritic(nn.Module):
    """Policy and value heads on one shared encoder or on two encoders of the same kind."""

    def __init__(self, config: PPOConfig, observation_space: spaces.Space, action_space: spaces.Space):
        super().__init__()
        self.encoder = build_encoder(config, observation_space)
        pretrained = bool(config.encoder_checkpoint)
        if not pretrained:
            orthogonal_init(self.encoder)
        self.critic_encoder = None
        if not config.shared_encoder:
            self.critic_encoder = build_encoder(config, observation_space, load_checkpoint=False)
            if pretrained:
                self.critic_encoder.load_state_dict(self.encoder.state_dict())
            else:
                orthogonal_init(self.critic_encoder)
        self.policy = policy_head(self.encoder.out_dim, action_space, config.log_std_init)
        self.value_head = linear(self.encoder.out_dim, 1, gain=1.0)

    def value(self, obs: Tensor, features: Tensor | None = None) -> Tensor:
        if self.critic_encoder is not None:
            features = self.critic_encoder(obs)
        elif features is None:
            features = self.encoder(obs)
        return self.value_head(features).squeeze(-1)

    def forward(self, obs: Tensor):
        features = self.encoder(obs)
        return self.policy(features), self.value(obs, features)


class PPO(Agent):
    name = "ppo"
    config_class = PPOConfig
    config: PPOConfig

    def __init__(self, config: PPOConfig, observation_space: spaces.Space, action_space: spaces.Space):
        super().__init__(config, observation_space, action_space)
        self.net = ActorCritic(config, observation_space, action_space).to(self.device)
        self.optimizer = torch.optim.Adam([p for p in self.net.parameters() if p.requires_grad],
                                          lr=config.learning_rate, eps=config.adam_eps,
                                          fused=self.device.type in ("cpu", "cuda"))
        self.clip_action = BoxClipper(action_space, self.device) if isinstance(action_space, spaces.Box) else None
        self.buffer: RolloutBuffer | None = None
        self.iteration = 0

    @torch.no_grad()
    def act(self, obs: Tensor, explore: bool = True) -> Tensor:
        dist = self.net.policy(self.net.encoder(obs))
        action = dist.sample() if explore else self.net.policy.mode(dist)
        return self.clip_action(action) if self.clip_action is not None else action

    # ---------------------------------------------------------------------- learning
    def progress_remaining(self) -> float:
        cfg = self.config
        total_iterations = max(cfg.steps // (cfg.num_steps * self.buffer.num_envs), 1)
        return max(1.0 - self.iteration / total_iterations, 0.0)

    def update(self, batch: Batch, clip_coef: float | None = None) -> dict[str, Tensor]:
        cfg = self.config
        clip_coef = cfg.clip_coef if clip_coef is None else clip_coef
        dist, value = self.net(batch.obs)
        log_prob = dist.log_prob(batch.action)
        log_ratio = log_prob - batch.log_prob
        ratio = log_ratio.exp()
        advantage = batch.advantage
        if cfg.norm_adv and advantage.numel() > 1:
            advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        policy_loss = torch.max(-advantage * ratio, -advantage * ratio.clamp(1 - clip_coef, 1 + clip_coef)).mean()
        if cfg.clip_vloss:
            clipped = batch.value + (value - batch.value).clamp(-clip_coef, clip_coef)
            value_loss = 0.5 * torch.max((value - batch.returns).square(), (clipped - batch.returns).square()).mean()
        else:
            value_loss = 0.5 * (value - batch.returns).square().mean()
        entropy = dist.entropy().mean()
        loss = policy_loss - cfg.ent_coef * entropy + cfg.vf_coef * value_loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.max_grad_norm > 0:
            nn.utils.clip_grad_norm_(self.net.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        with torch.no_grad():  # Schulman's unbiased, low-variance KL estimator (k3)
            approx_kl = ((ratio - 1) - log_ratio).mean()
            clip_fraction = ((ratio - 1).abs() > clip_coef).float().mean()
        return {"losses/policy_loss": policy_loss.detach(), "losses/value_loss": value_loss.detach(),
                "losses/entropy": entropy.detach(), "losses/approx_kl": approx_kl,
                "losses/clipfrac": clip_fraction}

    def train_on_rollout(self) -> dict[str, Tensor]:
        cfg = self.config
        remaining = self.progress_remaining()
        if cfg.anneal_lr:
            for group in self.optimizer.param_groups:
                group["lr"] = cfg.learning_rate * remaining
        clip_coef = cfg.clip_coef * remaining if cfg.anneal_clip else cfg.clip_coef
        metrics: dict[str, Tensor] = {}
        for _ in range(cfg.update_epochs):
            for batch in self.buffer.minibatches(cfg.num_minibatches, epochs=1):
                metrics = self.update(batch, clip_coef)
            if cfg.target_kl and float(metrics["losses/approx_kl"]) > cfg.target_kl:
                break  # early stopping on the approximate KL, as in OpenAI Baselines' PPO
        self.iteration += 1
        values, returns = self.buffer.value.flatten(), self.buffer.returns.flatten()
        metrics["losses/explained_variance"] = 1 - (returns - values).var() / returns.var().clamp_min(1e-8)
        metrics["charts/learning_rate"] = torch.tensor(self.optimizer.param_groups[0]["lr"])
        self.buffer.reset()
        return metrics

    # ------------------------------------------------------------------- runner hooks
    def setup_training(self, num_envs: int) -> None:
        self.buffer = RolloutBuffer(self.config.num_steps, num_envs, self.observation_space, self.action_space,
                                    self.device)

    @torch.no_grad()
    def rollout_action(self, obs: Tensor, step: int) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        dist, value = self.net(obs)
        action = dist.sample()
        env_action = self.clip_action(action) if self.clip_action is not None else action
        return action, env_action, {"log_prob": dist.log_prob(action), "value": value}

    @torch.no_grad()
    def observe(self, obs, action, reward, next_obs, terminated, truncated, extras) -> None:
        final_value = self.net.value(next_obs) if bool(truncated.any()) else None
        self.buffer.add(obs, action, extras["log_prob"], extras["value"], reward, terminated, truncated, final_value)

    def after_step(self, next_obs: Tensor, step: int) -> dict[str, Tensor] | None:
        if self.buffer.step < self.buffer.num_steps:
            return None
        with torch.no_grad():
            self.buffer.finish(self.net.value(next_obs), self.config.gamma, self.config.gae_lambda)
        return self.train_on_rollout()

    def at_boundary(self) -> bool:
        return self.buffer is None or self.buffer.step == 0

    def training_state(self, include_buffer: bool = True) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "iteration": self.iteration}

    def load_training_state(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.iteration = state["iteration"]
