"""PPO with the clipped surrogate objective (Schulman et al. 2017, eq. 7 and eq. 9)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from gymnasium import spaces
from torch import Tensor

from agents.base import Agent
from agents.config import option
from agents.flat_parameters import flat_optimizer
from agents.on_policy import OnPolicyConfig, OnPolicyRollouts
from replay import Batch


@dataclass
class PPOConfig(OnPolicyConfig):
    num_minibatches: int = option(4, "minibatches per epoch", positive=True)
    update_epochs: int = option(4, "passes over each rollout", positive=True)
    clip_coef: float = option(0.2, "surrogate clipping range epsilon", positive=True)
    anneal_clip: bool = option(False, "decay the clipping range linearly to 0 over --steps")
    clip_vloss: bool = option(True, "clip the value loss around the old values")
    target_kl: float = option(0.0, "stop the epochs early once the approximate KL exceeds this (0: off)",
                              bounds=(0.0, float("inf")))

    def validate(self) -> None:
        super().validate()
        steps_per_rollout = self.num_envs * self.num_steps
        if self.num_minibatches > steps_per_rollout:
            raise ValueError(f"num_minibatches must be at most num_envs x num_steps = {steps_per_rollout} "
                             f"(one sample each), got {self.num_minibatches}")


class PPO(OnPolicyRollouts, Agent):
    name = "ppo"
    config_class = PPOConfig
    config: PPOConfig
    compiled_methods = ("loss",)
    # rl-baselines3-zoo's tuned values for classic control and Pendulum, CleanRL's
    # ppo_atari.py for Atari (Schulman et al. 2017, Table 5), SB3's MuJoCo defaults for Box.
    presets = {
        "classic": dict(num_envs=8, num_steps=32, num_minibatches=1, update_epochs=20, gamma=0.98,
                        gae_lambda=0.8, ent_coef=0.0, learning_rate=1e-3, anneal_lr=True, clip_coef=0.2,
                        anneal_clip=True, clip_vloss=False, shared_encoder=False,
                        torch_threads=1, encoder_options={"hidden_sizes": [64, 64], "activation": "tanh"}),
        "atari": dict(num_envs=8, num_steps=128, num_minibatches=4, update_epochs=4, gamma=0.99, gae_lambda=0.95,
                      ent_coef=0.01, learning_rate=2.5e-4, anneal_lr=True, clip_coef=0.1, anneal_clip=False,
                      clip_vloss=True, shared_encoder=True, encoder="nature", eval_every=100_000,
                      checkpoint_every=100_000, log_every=10_000, env_options={"episodic_life": True}),
        # Pixel observations of a small task (e.g. reprl/DistractorCartPole-v0): the Atari settings.
        "pixels": dict(num_envs=8, num_steps=128, num_minibatches=4, update_epochs=4, gamma=0.99, gae_lambda=0.95,
                       ent_coef=0.01, learning_rate=2.5e-4, anneal_lr=True, clip_coef=0.1, clip_vloss=True,
                       shared_encoder=True, encoder="nature"),
        "box": dict(num_envs=1, num_steps=2048, num_minibatches=32, update_epochs=10, gamma=0.99, gae_lambda=0.95,
                    ent_coef=0.0, learning_rate=3e-4, anneal_lr=True, clip_coef=0.2, clip_vloss=True,
                    shared_encoder=False, normalize_obs=True, normalize_reward=True, torch_threads=1,
                    encoder_options={"hidden_sizes": [64, 64], "activation": "tanh"}),
        # Thousands of torch-native envs (--preset parallel): short rollouts, few large minibatches,
        # a large learning rate decayed to 0, torch's default threads (its 2,048-sample minibatches
        # run 1.4-1.5x faster on two CPU threads than on one). CartPole-v1 seeds 1-5 reach
        # evaluation return >= 475 within 250k-400k steps (1-2 s on two CPU threads) and end at
        # 500 after 1M.
        "parallel:classic": dict(backend="torch", num_envs=1024, num_steps=16, num_minibatches=8, update_epochs=2,
                                 gamma=0.99, gae_lambda=0.95, ent_coef=0.0, learning_rate=3e-3, anneal_lr=True,
                                 clip_coef=0.2, anneal_clip=True, clip_vloss=False, shared_encoder=False,
                                 torch_threads=0, eval_every=50_000,
                                 encoder_options={"hidden_sizes": [64, 64], "activation": "tanh"}),
        "Pendulum-v1": dict(num_envs=4, num_steps=1024, num_minibatches=64, update_epochs=10, gamma=0.9,
                            gae_lambda=0.95, ent_coef=0.0, learning_rate=1e-3, anneal_lr=True, clip_coef=0.2,
                            clip_vloss=False, shared_encoder=False, normalize_obs=False, normalize_reward=False,
                            torch_threads=1,
                            encoder_options={"hidden_sizes": [64, 64], "activation": "tanh"}),
    }

    def __init__(self, config: PPOConfig, observation_space: spaces.Space, action_space: spaces.Space):
        super().__init__(config, observation_space, action_space)
        self.init_actor_critic(observation_space, action_space)
        trainable = [p for p in self.net.parameters() if p.requires_grad] + self.attach_auxiliary(self.net.encoder)
        self.optimizer = flat_optimizer(torch.optim.Adam, trainable, lr=config.learning_rate, eps=config.adam_eps,
                                        fused=self.device.type in ("cpu", "cuda"))

    def update(self, batch: Batch, clip_coef: float | None = None) -> dict[str, Tensor]:
        """One step on ``batch``; every mean runs over the last dimension, so batches of
        ``[K, B]`` (K seeds stepped together, ``agents.multi_seed``) give K separate losses."""
        cfg = self.config
        clip_coef = cfg.clip_coef if clip_coef is None else clip_coef
        loss, metrics = self.loss(batch, torch.full((), clip_coef, device=self.device))
        return {**metrics, **self.optimizer_step(self.optimizer, loss, batch, cfg.max_grad_norm)}

    def loss(self, batch: Batch, clip_coef: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The loss to minimise and its detached terms (``clip_coef`` a tensor, as it may be annealed)."""
        cfg = self.config
        log_prob, entropy, value = self.net.evaluate_actions(batch.obs, batch.action)
        log_ratio = log_prob - batch.log_prob
        ratio = log_ratio.exp()
        advantage = self.normalized_advantage(batch.advantage)
        policy_loss = torch.max(-advantage * ratio, -advantage * ratio.clamp(1 - clip_coef, 1 + clip_coef)).mean(-1)
        if cfg.clip_vloss:
            clipped = batch.value + (value - batch.value).clamp(-clip_coef, clip_coef)
            value_loss = 0.5 * torch.max((value - batch.returns).square(), (clipped - batch.returns).square()).mean(-1)
        else:
            value_loss = 0.5 * (value - batch.returns).square().mean(-1)
        entropy = entropy.mean(-1)
        loss = policy_loss - cfg.ent_coef * entropy + cfg.vf_coef * value_loss
        with torch.no_grad():  # Schulman's unbiased, low-variance KL estimator (k3)
            approx_kl = ((ratio - 1) - log_ratio).mean(-1)
            clip_fraction = ((ratio - 1).abs() > clip_coef).float().mean(-1)
        return loss, {"losses/policy_loss": policy_loss.detach(), "losses/value_loss": value_loss.detach(),
                      "losses/entropy": entropy.detach(), "losses/approx_kl": approx_kl,
                      "losses/clipfrac": clip_fraction}

    def train_on_rollout(self) -> dict[str, Tensor]:
        cfg = self.config
        self.anneal_learning_rate()
        clip_coef = cfg.clip_coef * self.progress_remaining() if cfg.anneal_clip else cfg.clip_coef
        metrics: dict[str, Tensor] = {}
        for _ in range(cfg.update_epochs):
            for batch in self.buffer.minibatches(cfg.num_minibatches, epochs=1):
                metrics = self.update(batch, clip_coef)
            if cfg.target_kl and float(metrics["losses/approx_kl"]) > cfg.target_kl:
                break  # early stopping on the approximate KL, as in OpenAI Baselines' PPO
        return metrics
