"""Soft Actor-Critic (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications"):
off-policy maximum-entropy RL with twin Q critics, Polyak-averaged target critics and an
automatically tuned temperature; discrete actions as in Christodoulou (2019), "Soft Actor-Critic
for Discrete Action Settings".

Per gradient step, on a replay batch, with the temperature ``alpha`` of the step before:

* critics (eq. 5, 6, twin minimum of Fujimoto et al. 2018):
  ``y = r + discount (1 - terminated) (min_j Q'_j(s', a') - alpha log pi(a'|s'))``, ``a' ~ pi(s')``,
  loss ``sum_j (Q_j(s, a) - y)^2 / 2``;
* actor (eq. 7, reparameterised): ``E[alpha log pi(a|s) - min_j Q_j(s, a)]``;
* temperature (eq. 18): ``J(alpha) = E[-log alpha * (log pi(a|s) + H_target)]`` on the actor's
  sample, which raises ``alpha`` while the policy's entropy is below ``H_target`` and lowers it above;
* targets: ``theta' <- tau theta + (1 - tau) theta'`` after each step.

For discrete actions the critics output one value per action and the expectations over ``a``
are exact sums over ``pi(.|s)`` (Christodoulou 2019, eq. 9, 10, 11).

The critics share ``self.encoder`` (trained by the critic loss); the actor has an encoder of its
own, or with ``shared_encoder`` uses ``self.encoder``'s features without passing gradients into
it (Yarats et al. 2019, SAC-AE), the arrangement representation objectives such as DBC build on.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor, nn

from agents.base import Agent
from agents.compilation import compile_replay_adds
from agents.config import AgentConfig, option, replay_first_update
from agents.flat_parameters import FlatAdam, flat_optimizer, pack_parameters
from agents.networks import TanhGaussianHead, build_encoder, mlp
from envs import is_atari
from replay import Batch
from replay.replay_buffer import ReplayBuffer
from representation.ssl.heads import momentum_pair, momentum_step_


@dataclass
class SACConfig(AgentConfig):
    # Defaults are Stable-Baselines3's SAC defaults.
    learning_rate: float = option(3e-4, "Adam learning rate of actor, critics and temperature", positive=True)
    buffer_size: int = option(1_000_000, "replay capacity in transitions", positive=True)
    batch_size: int = option(256, "transitions per gradient step", positive=True)
    gamma: float = option(0.99, "discount factor", bounds=(0.0, 1.0))
    tau: float = option(0.005, "Polyak rate of the target critics", bounds=(0.0, 1.0), positive=True)
    learning_starts: int = option(100, "environment steps of uniformly random actions before learning",
                                  bounds=(0, 10**12))
    train_frequency: int = option(1, "environment steps between training rounds", positive=True)
    gradient_steps: int = option(1, "gradient steps per training round", positive=True)
    target_update_interval: int = option(1, "gradient steps between target updates", positive=True)
    alpha: float = option(1.0, "entropy temperature (its initial value when --autotune)", positive=True)
    autotune: bool = option(True, "tune the temperature toward the target entropy")
    target_entropy_scale: float = option(1.0, "target entropy as a multiple of -dim(A) (continuous) or of "
                                         "0.98 log|A| (discrete)", bounds=(-float("inf"), float("inf")))
    head_width: int = option(256, "width of the hidden layers of the actor and critic heads", positive=True)
    head_depth: int = option(1, "hidden layers of the actor and critic heads above the encoder", bounds=(0, 16))
    shared_encoder: bool = option(False, "the actor reads the critics' encoder (detached) instead of its own")
    n_step: int = option(1, "rewards summed before bootstrapping (n-step returns)", positive=True)
    max_grad_norm: float = option(0.0, "gradient clipping by global norm (0: off)", bounds=(0.0, float("inf")))
    checkpoint_replay: bool = option(True, "include the replay buffer in checkpoints, so a resume is exact")

    def first_update(self) -> tuple[int, str]:
        return replay_first_update(self)


class TwinQ(nn.Module):
    """Two Q heads on one encoder: ``Q_j(s, a)`` (continuous) or ``Q_j(s, .)`` (discrete)."""

    batch_shape_agnostic = True  # (agents.seed_stack)

    def __init__(self, encoder: nn.Module, action_dim: int, num_actions: int | None, hidden_sizes: list[int]):
        super().__init__()
        self.encoder = encoder
        in_dim = encoder.out_dim + (0 if num_actions else action_dim)
        out_dim = num_actions or 1
        self.q1, self.q2 = mlp(in_dim, hidden_sizes, out_dim), mlp(in_dim, hidden_sizes, out_dim)

    def forward(self, obs: Tensor, action: Tensor | None = None) -> tuple[Tensor, Tensor]:
        features = self.encoder(obs)
        if action is not None:
            features = torch.cat([features, action], dim=-1)
            return self.q1(features).squeeze(-1), self.q2(features).squeeze(-1)
        return self.q1(features), self.q2(features)


class SAC(Agent):
    name = "sac"
    steps_envs_asynchronously = True
    config_class = SACConfig
    config: SACConfig
    # The critics' loss, compiled by TorchDynamo where whole steps are not (a GPU); the actor's loss
    # runs through the critics with their gradients switched off, which TorchDynamo would break on.
    compiled_methods = ("critic_loss",)
    compiles_whole_steps = True
    # rl-baselines3-zoo hyperparams/sac.yml: Pendulum-v1 (learning_rate 1e-3, 2e4 steps) on SB3's
    # defaults, MlpPolicy 256-256 ReLU (here one 256 layer in the encoder and one in each head).
    presets = {
        "box": dict(num_envs=1, torch_threads=1, encoder_options={"hidden_sizes": [256], "activation": "relu"},),
        "Pendulum-v1": dict(num_envs=1, learning_rate=1e-3, torch_threads=1,
                            encoder_options={"hidden_sizes": [256], "activation": "relu"}),
        "classic": dict(num_envs=1, learning_rate=3e-4, torch_threads=1,
                        encoder_options={"hidden_sizes": [256], "activation": "relu"}),
        # Christodoulou (2019), Table 1: Atari settings.
        "atari": dict(num_envs=1, encoder="nature", learning_rate=3e-4, buffer_size=1_000_000, batch_size=64,
                      learning_starts=20_000, train_frequency=4, target_update_interval=2_000, tau=1.0,
                      target_entropy_scale=1.0, shared_encoder=True, eval_every=250_000,
                      checkpoint_every=250_000, log_every=10_000, env_options={"episodic_life": True}),
    }

    def __init__(self, config: SACConfig, observation_space: spaces.Space, action_space: spaces.Space):
        super().__init__(config, observation_space, action_space)
        if isinstance(action_space, spaces.Discrete):
            self.num_actions: int | None = int(action_space.n)
            action_dim = self.num_actions
            self.target_entropy = config.target_entropy_scale * 0.98 * math.log(self.num_actions)
        elif isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
            if not (np.isfinite(action_space.low).all() and np.isfinite(action_space.high).all()):
                raise ValueError(f"sac squashes its actions into the Box's bounds, which must be finite; got {action_space}")
            self.num_actions, action_dim = None, int(action_space.shape[0])
            self.target_entropy = -config.target_entropy_scale * action_dim
            low = torch.as_tensor(action_space.low, dtype=torch.float32, device=self.device)
            high = torch.as_tensor(action_space.high, dtype=torch.float32, device=self.device)
            self.action_center, self.action_scale = (high + low) / 2, (high - low) / 2
        else:
            raise ValueError(f"sac needs a Discrete or 1-D Box action space, got {action_space}")
        self.action_dim = action_dim
        hidden = [config.head_width] * config.head_depth
        self.encoder = build_encoder(config, observation_space)
        self.critic = TwinQ(self.encoder, action_dim, self.num_actions, hidden)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_encoder = None if config.shared_encoder else build_encoder(config, observation_space)
        if self.num_actions:
            self.actor_trunk: nn.Module = nn.Identity()
            self.actor_head: nn.Module = mlp(self.encoder.out_dim, hidden, self.num_actions)
        else:
            self.actor_trunk = (nn.Sequential(mlp(self.encoder.out_dim, hidden[:-1], hidden[-1]), nn.ReLU())
                                if hidden else nn.Identity())
            self.actor_head = TanhGaussianHead(hidden[-1] if hidden else self.encoder.out_dim, action_dim)
        self.to(self.device)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(config.alpha), device=self.device),
                                      requires_grad=config.autotune)  # log-space keeps alpha > 0
        fused = self.device.type in ("cpu", "cuda")
        self.actor_optimizer = flat_optimizer(FlatAdam, self.actor_parameters(), lr=config.learning_rate, fused=fused)
        critic_params = [p for p in self.critic.parameters() if p.requires_grad] + self.attach_auxiliary(self.encoder)
        self.critic_optimizer = flat_optimizer(FlatAdam, critic_params, lr=config.learning_rate, fused=fused)
        # The target critics in one tensor tiled like the critics' flat one: Polyak's step is one pass.
        pack_parameters(list(self.critic_target.parameters()))
        self.alpha_optimizer = flat_optimizer(FlatAdam, [self.log_alpha], lr=config.learning_rate, fused=fused)
        self.buffer: ReplayBuffer | None = None
        self._since_train = 0
        self._updates = 0

    def actor_parameters(self) -> list[nn.Parameter]:
        modules = [self.actor_trunk, self.actor_head]
        if self.actor_encoder is not None:
            modules.append(self.actor_encoder)
        return [p for m in modules for p in m.parameters() if p.requires_grad]

    # ------------------------------------------------------------------------ policy
    def actor_features(self, obs: Tensor) -> Tensor:
        if self.actor_encoder is not None:
            return self.actor_encoder(obs)
        return self.critic.encoder(obs).detach()

    def policy(self, obs: Tensor, deterministic: bool = False) -> tuple[Tensor, Tensor]:
        """Continuous: ``(action in [-1, 1]^d, log pi)``; discrete: ``(probabilities, log-probabilities)``."""
        features = self.actor_trunk(self.actor_features(obs))
        if self.num_actions:
            log_probs = F.log_softmax(self.actor_head(features), dim=-1)
            return log_probs.exp(), log_probs
        if deterministic:
            return self.actor_head.sample(features, deterministic=True)
        return self.actor_head.sample(features, self.policy_noise(features.shape[:-1]))

    def policy_noise(self, batch_shape: torch.Size) -> Tensor | None:
        """Standard normal draws ``[*batch_shape, d]`` for the reparameterised action; None lets the
        policy head draw them."""
        return None

    def sample_categorical(self, probs: Tensor) -> Tensor:
        """One action index drawn from each row of ``probs``."""
        return torch.multinomial(probs, 1).squeeze(-1)

    def random_actions(self, count: int, generator: torch.Generator | None = None) -> Tensor:
        """``count`` uniformly random actions as replay stores them: indices, or points of ``[-1, 1]^d``."""
        if self.num_actions:
            return torch.randint(self.num_actions, (count,), generator=generator, device=self.device)
        return torch.rand((count, self.action_dim), generator=generator, device=self.device) * 2.0 - 1.0

    def to_env_action(self, action: Tensor) -> Tensor:
        return action if self.num_actions else self.action_center + self.action_scale * action

    def representation_encoder(self) -> nn.Module:
        return self.encoder

    @torch.no_grad()
    def act(self, obs: Tensor, explore: bool = True) -> Tensor:
        return self.to_env_action(self.policy_action(obs, explore))

    def policy_action(self, obs: Tensor, explore: bool) -> Tensor:
        """The action as stored in replay: an index, or the squashed action in ``[-1, 1]^d``."""
        if self.num_actions:
            probs, _ = self.policy(obs)
            return self.sample_categorical(probs) if explore else probs.argmax(-1)
        return self.policy(obs, deterministic=not explore)[0]

    @property
    def alpha(self) -> Tensor:
        return self.log_alpha.detach().exp()

    # ---------------------------------------------------------------------- learning
    def update(self, batch: Batch) -> dict[str, Tensor]:
        """One gradient step of critics, actor and temperature, each through ``gradient_step``
        (with ``--compile`` on the CPU one graph each), then the target critics' step when due. All
        three use the temperature from before this update, and the temperature steps on the entropy
        of the actor's own sample, as in Stable-Baselines3's SAC: one actor pass serves both. Every
        mean runs over the last dimension, so a ``[K, B]`` batch (K seeds stacked,
        ``agents.multi_seed_sac``, with ``alpha`` of shape ``[K, 1]``) gives K separate losses."""
        batch = self.auxiliary_view(batch)
        cfg = self.config
        alpha = self.alpha
        metrics: dict[str, Tensor] = {"losses/alpha": alpha}
        # Auxiliary objectives (DBC, ...) shape the critics' encoder, so they ride on the critic step.
        metrics.update(*self.gradient_step(self.critic_optimizer, batch, cfg.max_grad_norm, batch, alpha,
                                           loss="critic_loss"))
        entropy, actor_metrics = self.gradient_step(self.actor_optimizer, None, cfg.max_grad_norm, batch, alpha,
                                                    loss="actor_loss", frozen=self.critic)
        metrics.update(actor_metrics)
        if cfg.autotune:
            metrics.update(*self.gradient_step(self.alpha_optimizer, None, 0.0, entropy, loss="temperature_loss"))
        self._updates += 1
        if self._updates % cfg.target_update_interval == 0:
            self.update_target()
        return metrics

    def temperature_loss(self, entropy: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Eq. 18: ``-log alpha (H_target - H)``, which raises ``alpha`` while the entropy ``H`` is
        below the target and lowers it above."""
        loss = -(self.log_alpha * (self.target_entropy - entropy)).mean(-1)
        return loss, {"losses/alpha_loss": loss.detach()}

    def critic_loss(self, batch: Batch, alpha: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Both critics' soft Bellman residual (Haarnoja et al. 2018, eq. 5, with the soft value of
        eq. 3 at the next state)."""
        with torch.no_grad():
            if self.num_actions:
                next_probs, next_log_probs = self.policy(batch.next_obs)
                next_q = torch.min(*self.critic_target(batch.next_obs))
                next_value = (next_probs * (next_q - alpha.unsqueeze(-1) * next_log_probs)).sum(-1)
            else:
                next_action, next_log_prob = self.policy(batch.next_obs)
                next_value = torch.min(*self.critic_target(batch.next_obs, next_action)) - alpha * next_log_prob
            target = batch.reward + batch.discount * (1.0 - batch.terminated) * next_value
        if self.num_actions:
            index = batch.action.long().unsqueeze(-1)
            q1, q2 = (q.gather(-1, index).squeeze(-1) for q in self.critic(batch.obs))
        else:
            q1, q2 = self.critic(batch.obs, batch.action)
        loss = 0.5 * ((q1 - target).square().mean(-1) + (q2 - target).square().mean(-1))
        return loss, {"losses/critic_loss": loss.detach(), "losses/q_values": q1.detach().mean(-1)}

    def actor_loss(self, batch: Batch, alpha: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """Eq. 7, reparameterised: ``alpha log pi(a|s) - min_j Q_j(s, a)``, through the critics just
        stepped (which it must not train: ``frozen`` in ``update``); discrete, the exact
        expectation over ``pi(.|s)`` (Christodoulou 2019). Also the policy's entropy at ``s``
        (continuous: ``-log pi`` of the sampled action), detached, for the temperature's step."""
        if self.num_actions:
            probs, log_probs = self.policy(batch.obs)
            with torch.no_grad():
                q = torch.min(*self.critic(batch.obs))
            loss = (probs * (alpha.unsqueeze(-1) * log_probs - q)).sum(-1).mean(-1)
            entropy = -(probs * log_probs).sum(-1)
        else:
            action, log_prob = self.policy(batch.obs)
            loss = (alpha * log_prob - torch.min(*self.critic(batch.obs, action))).mean(-1)
            entropy = -log_prob
        entropy = entropy.detach()
        return loss, entropy, {"losses/actor_loss": loss.detach(), "losses/entropy": entropy.mean(-1)}

    def update_target(self) -> None:
        if "_polyak_pair" not in self.__dict__:  # listed once: walking the modules cost more than the step
            self._polyak_pair = momentum_pair(self.critic_target, self.critic)
        momentum_step_(*self._polyak_pair, 1.0 - self.config.tau)

    # ------------------------------------------------------------------- runner hooks
    def setup_training(self, num_envs: int) -> None:
        cfg = self.config
        frame_stack = self.observation_space.shape[0] if is_atari(cfg.env) else 1
        self.buffer = ReplayBuffer(cfg.buffer_size, num_envs, self.observation_space, self.action_space,
                                   self.device, frame_stack=frame_stack, n_step=cfg.n_step, gamma=cfg.gamma)
        self.trace_methods("policy_action", optimizer=self.actor_optimizer)
        compile_replay_adds(self, self.buffer)

    @torch.no_grad()
    def rollout_action(self, obs: Tensor, step: int) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        if step >= self.config.learning_starts:
            action = self.policy_action(obs, True)
        else:
            action = self.random_actions(obs.shape[0])
        return action, self.to_env_action(action), {}

    def observe(self, obs, action, reward, next_obs, terminated, truncated, extras, env_ids=None) -> None:
        self.buffer.add(obs, action, reward, next_obs, terminated, truncated, env_ids)

    def after_step(self, next_obs: Tensor, step: int) -> dict[str, Tensor] | None:
        cfg = self.config
        if step <= cfg.learning_starts or not self.buffer.surely_sampleable():
            return None
        metrics = None
        self._since_train += next_obs.shape[0] // self.num_seeds
        while self._since_train >= cfg.train_frequency:
            self._since_train -= cfg.train_frequency
            for _ in range(cfg.gradient_steps):
                metrics = self.update(self.buffer.sample(cfg.batch_size))
        return metrics

    def training_state(self, include_buffer: bool = True) -> dict[str, Any]:
        state = {"actor_optimizer": self.actor_optimizer.state_dict(),
                 "critic_optimizer": self.critic_optimizer.state_dict(),
                 "alpha_optimizer": self.alpha_optimizer.state_dict(),
                 "since_train": self._since_train, "updates": self._updates}
        if include_buffer and self.config.checkpoint_replay and self.buffer is not None:
            state["buffer"] = self.buffer.state_dict()
        return state

    def load_training_state(self, state: dict[str, Any]) -> None:
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
        self._since_train, self._updates = state["since_train"], state["updates"]
        if "buffer" in state and self.buffer is not None:
            self.buffer.load_state_dict(state["buffer"])
