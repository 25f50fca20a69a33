"""PPO with the clipped surrogate objective (Schulman et al. 2017, eq. 7 and eq. 9)."""
from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, replace

import torch
from gymnasium import spaces
from torch import Tensor

from agents.base import Agent
from agents.config import option
from agents.flat_parameters import FlatAdam, flat_optimizer
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
    compiles_whole_steps = True
    # On an H200 a compiled run matched its eager one to 1e-4 and ran 1.5-1.9 times as fast from
    # 1,024 to 16,384 envs (README, "On a GPU").
    compiles_whole_steps_on_gpu = True
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
        # Thousands of torch-native envs (--preset parallel): short rollouts, one pass over each in
        # minibatches of 1,024, a large learning rate decayed to 0 over a run of 2M steps, torch's
        # default threads (a rollout with its update took 26.5 ms on two CPU threads, 31.4 on one).
        # CartPole-v1 seeds 1-5 reach evaluation return >= 475 within 300k-650k steps (1.6-3.2 s
        # on two CPU threads) and end at 500 after 2M. Two epochs of 2,048-sample minibatches got
        # there in fewer steps (250k-550k of a 1M run) but no sooner (1.8-3.9 s, the same hour):
        # their update took 27.4 ms a rollout against 16.9 (docs/performance.md, "One pass over
        # each rollout"). With one epoch, a run of 1M anneals too early to be sure of 475.
        # Metrics are logged once a rollout (16,384 steps): every 2,000 steps, the default, wrote
        # 520 lines in a run of 1M steps, 0.12-0.16 s of it here.
        "parallel:classic": dict(backend="torch", num_envs=1024, num_steps=16, num_minibatches=16, update_epochs=1,
                                 gamma=0.99, gae_lambda=0.95, ent_coef=0.0, learning_rate=3e-3, anneal_lr=True,
                                 clip_coef=0.2, anneal_clip=True, clip_vloss=False, shared_encoder=False,
                                 torch_threads=0, eval_every=50_000, log_every=16_384,
                                 encoder_options={"hidden_sizes": [64, 64], "activation": "tanh"}),
        # rl-baselines3-zoo's Acrobot and MountainCar values, the rest SB3's defaults (minibatches of 64)
        "Acrobot-v1": dict(num_envs=16, num_steps=256, num_minibatches=64, update_epochs=4, gamma=0.99,
                           gae_lambda=0.94, ent_coef=0.0, learning_rate=3e-4, anneal_lr=False, clip_coef=0.2,
                           clip_vloss=False, shared_encoder=False, normalize_obs=True, normalize_reward=True,
                           torch_threads=1, encoder_options={"hidden_sizes": [64, 64], "activation": "tanh"}),
        "MountainCar-v0": dict(num_envs=16, num_steps=16, num_minibatches=4, update_epochs=4, gamma=0.99,
                               gae_lambda=0.98, ent_coef=0.0, learning_rate=3e-4, anneal_lr=False, clip_coef=0.2,
                               clip_vloss=False, shared_encoder=False, normalize_obs=True, normalize_reward=True,
                               torch_threads=1, encoder_options={"hidden_sizes": [64, 64], "activation": "tanh"}),
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
        self.optimizer = flat_optimizer(FlatAdam, trainable, lr=config.learning_rate, eps=config.adam_eps)

    def update(self, batch: Batch, clip_coef: float | Tensor | None = None,
               diagnostics: bool = True, rows: Tensor | None = None) -> dict[str, Tensor]:
        """One step on ``batch`` (its advantages standardised), or on its rows ``rows``
        (``minibatch``), as ``minibatches`` gives them; every mean runs over the last dimension,
        so batches of ``[K, B]`` (K seeds stepped together, ``agents.multi_seed``) give K separate
        losses. Without ``diagnostics`` the step returns no loss terms (only the rollout's last
        step and ``target_kl``'s checks read them)."""
        cfg = self.config
        clip_coef = cfg.clip_coef if clip_coef is None else clip_coef
        if not isinstance(clip_coef, Tensor):
            clip_coef = torch.full((), clip_coef, device=self.device)
        # Compiled, the logged terms fuse into the loss's kernels, and a loss without them would be
        # a second graph to compile.
        diagnostics = diagnostics or cfg.compile
        if rows is not None and self._whole_step_settings(self.optimizer) is None:
            # (a step of separate calls, whose auxiliary objective reads the minibatch too)
            batch, rows = self.minibatch(batch, rows), None
        (metrics,) = self.gradient_step(self.optimizer, batch, cfg.max_grad_norm, batch, clip_coef, diagnostics, rows)
        return metrics

    def loss(self, batch: Batch, clip_coef: Tensor, diagnostics: bool = True,
             rows: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """The loss to minimise and, with ``diagnostics``, its detached terms (``clip_coef`` a
        tensor, as it may be annealed), on ``batch`` or on its rows ``rows`` (``minibatch``: in a
        compiled whole step, the gather and the standardisation join the step's graph). Without
        an entropy bonus the entropy is computed for the diagnostics alone."""
        cfg = self.config
        if rows is not None:
            batch = self.minibatch(batch, rows)
        log_prob, entropy, value = self.net.evaluate_actions(batch.obs, batch.action,
                                                             with_entropy=bool(cfg.ent_coef) or diagnostics)
        log_ratio = log_prob - batch.log_prob
        ratio = log_ratio.exp()
        negative_advantage = -batch.advantage
        with torch.no_grad():
            clipped_surrogate = negative_advantage * ratio.clamp(1 - clip_coef, 1 + clip_coef)
        policy_loss = max_with_clipped(negative_advantage * ratio, clipped_surrogate).mean(-1)
        value_error = (value - batch.returns).square()
        if cfg.clip_vloss:
            with torch.no_grad():
                # Where the clip is inactive the clipped value is ``value`` itself, not
                # ``old + (value - old)``, which rounds off it and could win the max without gradient.
                change = value - batch.value
                clipped_value = torch.where(change.abs() > clip_coef, batch.value + change.clamp(-clip_coef, clip_coef),
                                            value)
                clipped_error = (clipped_value - batch.returns).square()
            value_error = max_with_clipped(value_error, clipped_error)
        value_loss = 0.5 * value_error.mean(-1)
        loss = policy_loss + cfg.vf_coef * value_loss
        if cfg.ent_coef:
            loss = loss - cfg.ent_coef * entropy.mean(-1)
        if not diagnostics:
            return loss, {}
        with torch.no_grad():  # Schulman's unbiased, low-variance KL estimator (k3)
            approx_kl = ((ratio - 1) - log_ratio).mean(-1)
            clip_fraction = ((ratio - 1).abs() > clip_coef).float().mean(-1)
        return loss, {"losses/policy_loss": policy_loss.detach(), "losses/value_loss": value_loss.detach(),
                      "losses/entropy": entropy.detach().mean(-1), "losses/approx_kl": approx_kl,
                      "losses/clipfrac": clip_fraction}

    def minibatches(self) -> Iterator[tuple[Batch, Tensor | None]]:
        """The update's minibatches, epoch after epoch, as ``(batch, rows)``: the rows ``rows`` of
        the whole rollout ``batch``, which ``update`` takes and standardises (``minibatch``),
        advantages standardised within each (``norm_adv``); one minibatch is the same whole
        rollout every epoch, standardised once (``rows`` None)."""
        cfg = self.config
        rollout = self.buffer.whole_rollout()
        if cfg.num_minibatches == 1:
            return itertools.repeat((self.standardized(rollout), None), cfg.update_epochs)
        return ((rollout, rows) for rows in self.buffer.minibatch_rows(cfg.num_minibatches, epochs=cfg.update_epochs))

    def minibatch(self, rollout: Batch, rows: Tensor) -> Batch:
        """The rows ``rows`` of ``rollout``, standardised."""
        return self.standardized(rollout.take(rows))

    def standardized(self, batch: Batch) -> Batch:
        return replace(batch, advantage=self.normalized_advantage(batch.advantage))

    def train_on_rollout(self) -> dict[str, Tensor]:
        cfg = self.config
        self.anneal_learning_rate()
        clip_coef = torch.full((), cfg.clip_coef * self.progress_remaining() if cfg.anneal_clip else cfg.clip_coef,
                               device=self.device)
        metrics: dict[str, Tensor] = {}
        last_step = cfg.update_epochs * cfg.num_minibatches - 1
        for step, (batch, rows) in enumerate(self.minibatches()):
            epoch_ends = (step + 1) % cfg.num_minibatches == 0
            metrics = self.update(batch, clip_coef, diagnostics=step == last_step or (epoch_ends and cfg.target_kl > 0),
                                  rows=rows)
            if epoch_ends and cfg.target_kl and float(metrics["losses/approx_kl"]) > cfg.target_kl:
                break  # early stopping on the approximate KL, as in OpenAI Baselines' PPO
        return metrics


def max_with_clipped(term: Tensor, clipped: Tensor) -> Tensor:
    """``max(term, clipped)``, PPO's pessimistic bound (eq. 7), where ``clipped`` is ``term``
    computed from a clipped ratio or value, given without gradient. It differs from ``term`` only
    where the clip is active, and there its gradient is zero, so the gradient is ``term``'s
    wherever ``term`` is the larger or they tie (``torch.max`` splits a tie's gradient into two
    halves that add up to the same): the same loss and gradient in fewer backward ops."""
    return torch.where(clipped > term, clipped, term)
