"""DQN (Mnih et al. 2015) with its variants as flags of one agent.

The target line is the same for every variant: ``y = r + discount * (1 - terminated) * q_next``,
where the buffer supplies the n-step ``r`` and ``discount = gamma ** k`` (Sutton & Barto 2018,
eq. 7.1) and ``double`` only changes which network picks the argmax in ``q_next``
(van Hasselt et al. 2016, eq. 4).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor, nn

from agents.base import Agent
from agents.config import AgentConfig, option
from agents.networks import build_encoder
from envs import is_atari
from replay import Batch
from replay.replay_buffer import ReplayBuffer


@dataclass
class DQNConfig(AgentConfig):
    learning_rate: float = option(1e-4, "Adam learning rate", positive=True)
    adam_eps: float = option(1e-8, "Adam epsilon", positive=True)
    buffer_size: int = option(100_000, "replay capacity in transitions", positive=True)
    batch_size: int = option(32, "transitions per gradient step", positive=True)
    gamma: float = option(0.99, "discount factor", bounds=(0.0, 1.0))
    n_step: int = option(1, "rewards summed before bootstrapping (n-step returns)", positive=True)
    double: bool = option(False, "Double DQN: the online net picks the next action, the target net values it")
    tau: float = option(1.0, "target update rate: 1 copies the online net, < 1 Polyak-averages", bounds=(0.0, 1.0))
    target_update_interval: int = option(1_000, "environment steps between target-network updates", positive=True)
    train_frequency: int = option(4, "environment steps between training rounds", positive=True)
    gradient_steps: int = option(1, "gradient steps per training round", positive=True)
    learning_starts: int = option(10_000, "environment steps of random play before learning", bounds=(0, 10**12))
    start_e: float = option(1.0, "initial exploration epsilon", bounds=(0.0, 1.0))
    end_e: float = option(0.05, "final exploration epsilon", bounds=(0.0, 1.0))
    exploration_fraction: float = option(0.1, "fraction of --steps over which epsilon decays linearly", bounds=(0.0, 1.0))
    loss: str = option("huber", "TD loss: huber (smooth L1, as in the Nature paper) or mse", choices=("huber", "mse"))
    max_grad_norm: float = option(10.0, "gradient clipping by global norm (0: off)", bounds=(0.0, float("inf")))
    checkpoint_replay: bool = option(True, "include the replay buffer in checkpoints, so a resume is exact")


class QNetwork(nn.Module):
    def __init__(self, encoder: nn.Module, num_actions: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.out_dim, num_actions)

    def forward(self, obs: Tensor) -> Tensor:
        return self.head(self.encoder(obs))


class DQN(Agent):
    name = "dqn"
    config_class = DQNConfig
    config: DQNConfig
    # rl-baselines3-zoo's tuned CartPole values; CleanRL's dqn_atari.py for Atari
    # (Mnih et al. 2015, Extended Data Table 1).
    presets = {
        "classic": dict(num_envs=1, learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1_000,
                        gamma=0.99, target_update_interval=10, train_frequency=256, gradient_steps=128,
                        exploration_fraction=0.16, start_e=1.0, end_e=0.04, max_grad_norm=10.0, torch_threads=1,
                        encoder_options={"hidden_sizes": [256, 256], "activation": "relu"}),
        "atari": dict(num_envs=1, learning_rate=1e-4, batch_size=32, buffer_size=1_000_000, learning_starts=80_000,
                      gamma=0.99, target_update_interval=1_000, train_frequency=4, gradient_steps=1,
                      exploration_fraction=0.1, start_e=1.0, end_e=0.01, encoder="nature", eval_every=250_000,
                      checkpoint_every=250_000, log_every=10_000, env_options={"episodic_life": True}),
    }

    def __init__(self, config: DQNConfig, observation_space: spaces.Space, action_space: spaces.Space):
        super().__init__(config, observation_space, action_space)
        if not isinstance(action_space, spaces.Discrete):
            raise ValueError(f"dqn needs a discrete action space, got {action_space}")
        self.num_actions = int(action_space.n)
        self.q = QNetwork(build_encoder(config, observation_space), self.num_actions).to(self.device)
        self.q_target = QNetwork(build_encoder(config, observation_space, load_checkpoint=False),
                                 self.num_actions).to(self.device)
        self.q_target.load_state_dict(self.q.state_dict())
        self.q_target.requires_grad_(False)
        self.optimizer = torch.optim.Adam([p for p in self.q.parameters() if p.requires_grad],
                                          lr=config.learning_rate, eps=config.adam_eps,
                                          fused=self.device.type in ("cpu", "cuda"))
        self.buffer: ReplayBuffer | None = None
        self._since_train = 0
        self._since_target = 0

    # ------------------------------------------------------------------------ acting
    def epsilon(self, step: int) -> float:
        cfg = self.config
        duration = max(cfg.exploration_fraction * cfg.steps, 1.0)
        return max(cfg.end_e, cfg.start_e + (cfg.end_e - cfg.start_e) * step / duration)

    @torch.no_grad()
    def act(self, obs: Tensor, explore: bool = True, epsilon: float | None = None) -> Tensor:
        greedy = self.q(obs).argmax(dim=1)
        eps = self.config.end_e if epsilon is None else epsilon
        if not explore or eps <= 0.0:
            return greedy
        random_actions = torch.randint(self.num_actions, greedy.shape, device=greedy.device)
        return torch.where(torch.rand(greedy.shape, device=greedy.device) < eps, random_actions, greedy)

    # ---------------------------------------------------------------------- learning
    def td_target(self, batch: Batch) -> Tensor:
        with torch.no_grad():
            next_q_target = self.q_target(batch.next_obs)
            if self.config.double:
                next_action = self.q(batch.next_obs).argmax(dim=1, keepdim=True)
                next_q = next_q_target.gather(1, next_action).squeeze(1)
            else:
                next_q = next_q_target.max(dim=1).values
            return batch.reward + batch.discount * (1.0 - batch.terminated) * next_q

    def update(self, batch: Batch) -> dict[str, Tensor]:
        q = self.q(batch.obs).gather(1, batch.action.long().view(-1, 1)).squeeze(1)
        target = self.td_target(batch)
        td_error = q - target
        if self.config.loss == "huber":
            per_sample = F.smooth_l1_loss(q, target, reduction="none")
        else:
            per_sample = 0.5 * td_error.square()
        loss = (batch.weights * per_sample).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.max_grad_norm > 0:
            nn.utils.clip_grad_norm_(self.q.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        if self.buffer is not None:
            self.buffer.update_priorities(batch.indices, td_error.detach().abs())
        return {"losses/td_loss": loss.detach(), "losses/q_values": q.detach().mean()}

    @torch.no_grad()
    def update_target(self) -> None:
        tau = self.config.tau
        if tau >= 1.0:
            self.q_target.load_state_dict(self.q.state_dict())
            return
        for target, online in zip(self.q_target.parameters(), self.q.parameters()):
            target.lerp_(online, tau)

    # ------------------------------------------------------------------- runner hooks
    def setup_training(self, num_envs: int) -> None:
        cfg = self.config
        frame_stack = self.observation_space.shape[0] if is_atari(cfg.env) else 1
        self.buffer = ReplayBuffer(cfg.buffer_size, num_envs, self.observation_space, self.action_space,
                                   self.device, frame_stack=frame_stack, n_step=cfg.n_step, gamma=cfg.gamma)

    def rollout_action(self, obs: Tensor, step: int) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        if step < self.config.learning_starts:
            action = torch.randint(self.num_actions, (obs.shape[0],), device=obs.device)
        else:
            action = self.act(obs, explore=True, epsilon=self.epsilon(step))
        return action, action, {}

    def observe(self, obs, action, reward, next_obs, terminated, truncated, extras) -> None:
        self.buffer.add(obs, action, reward, next_obs, terminated, truncated)

    def after_step(self, next_obs: Tensor, step: int) -> dict[str, Tensor] | None:
        cfg = self.config
        metrics = None
        num_envs = next_obs.shape[0]
        if step > cfg.learning_starts:
            self._since_train += num_envs
            while self._since_train >= cfg.train_frequency:
                self._since_train -= cfg.train_frequency
                for _ in range(cfg.gradient_steps):
                    metrics = self.update(self.buffer.sample(cfg.batch_size))
        self._since_target += num_envs
        if self._since_target >= cfg.target_update_interval:
            self._since_target %= cfg.target_update_interval
            self.update_target()
        if metrics is not None:
            metrics["charts/epsilon"] = torch.tensor(self.epsilon(step))
        return metrics

    def training_state(self, include_buffer: bool = True) -> dict[str, Any]:
        state = {"optimizer": self.optimizer.state_dict(), "since_train": self._since_train,
                 "since_target": self._since_target}
        if include_buffer and self.config.checkpoint_replay and self.buffer is not None:
            state["buffer"] = self.buffer.state_dict()
        return state

    def load_training_state(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self._since_train, self._since_target = state["since_train"], state["since_target"]
        if "buffer" in state and self.buffer is not None:
            self.buffer.load_state_dict(state["buffer"])
