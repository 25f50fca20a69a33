"""DQN (Mnih et al. 2015) and its improvements as flags of one agent, up to a full Rainbow.

Every variant shares one target line: the value of the next state is the expectation of the
target network's Q (or return distribution) under a distribution over next actions,
``y = r + discount * (1 - terminated) * sum_a' pi(a' | s') Q_target(s', a')``, where
- ``target=q_learning``: pi is greedy w.r.t. the target net, or the online net with ``double``
  (van Hasselt et al. 2016, eq. 4);
- ``target=sarsa``: pi puts all mass on the action the behaviour policy took next;
- ``target=expected_sarsa``: pi is the epsilon-greedy behaviour policy (Sutton & Barto 2018, eq. 6.9);
and the buffer supplies the n-step ``r`` and ``discount = gamma ** k`` (Sutton & Barto 2018,
eq. 7.1). ``distributional`` (C51) applies the same mixture to return distributions and projects
it onto the support (Bellemare et al. 2017); ``prioritized`` only changes how the buffer samples,
the loss is always weighted by ``batch.weights`` and priorities are always reported back.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor, nn

from agents.base import Agent
from agents.compilation import compile_replay_adds
from agents.c51 import project_distribution
from agents.config import AgentConfig, option, replay_first_update
from agents.exploration import linear_schedule
from agents.flat_parameters import FlatAdam, flat_optimizer, pack_parameters
from agents.networks import build_encoder
from agents.q_heads import QNetwork
from envs import is_atari
from replay import Batch
from replay.replay_buffer import ReplayBuffer
from representation.encoders import encode
from representation.ssl.heads import momentum_pair, momentum_step_


@dataclass
class DQNConfig(AgentConfig):
    learning_rate: float = option(1e-4, "Adam learning rate", positive=True)
    adam_eps: float = option(1e-8, "Adam epsilon", positive=True)
    buffer_size: int = option(100_000, "replay capacity in transitions", positive=True)
    batch_size: int = option(32, "transitions per gradient step", positive=True)
    gamma: float = option(0.99, "discount factor", bounds=(0.0, 1.0))
    n_step: int = option(1, "rewards summed before bootstrapping (n-step returns)", positive=True)
    double: bool = option(False, "Double DQN: the online net picks the next action, the target net values it")
    target: str = option("q_learning", "bootstrap target: q_learning (max), sarsa (the next action taken) or "
                         "expected_sarsa (expectation under the epsilon-greedy policy)",
                         choices=("q_learning", "sarsa", "expected_sarsa"))
    dueling: bool = option(False, "dueling head: separate value and advantage streams")
    dueling_aggregation: str = option("mean", "how the advantage stream is centred: mean or max",
                                      choices=("mean", "max"))
    noisy: bool = option(False, "NoisyNet head for exploration (epsilon is then 0)")
    noisy_sigma0: float = option(0.5, "initial NoisyNet noise scale sigma_0", positive=True)
    head_hidden: int = option(0, "hidden units in each head stream (0: a single linear layer)", bounds=(0, 10**6))
    prioritized: bool = option(False, "proportional prioritized replay")
    priority_alpha: float = option(0.6, "priority exponent alpha", bounds=(0.0, 10.0))
    priority_beta: float = option(0.4, "initial importance-sampling exponent beta, annealed to 1 over --steps",
                                  bounds=(0.0, 1.0))
    priority_eps: float = option(1e-6, "added to |TD error| before the exponent", bounds=(0.0, 1.0))
    distributional: bool = option(False, "C51: learn a categorical return distribution")
    atoms: int = option(51, "atoms of the return distribution", bounds=(2, 10_000))
    v_min: float = option(-10.0, "smallest return on the support")
    v_max: float = option(10.0, "largest return on the support")
    tau: float = option(1.0, "target update rate: 1 copies the online net, < 1 Polyak-averages",
                       bounds=(0.0, 1.0), positive=True)
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
    replay_features: bool = option(False, "with --freeze-encoder: replay stores the frozen encoder's features instead "
                                   "of observations, so updates run only the head (the same learning at a fraction "
                                   "of the compute: the target network's encoder is the same frozen one)")
    standardize_features: bool = option(False, "with --freeze-encoder: standardise each feature dimension with "
                                        "statistics of the --learning-starts random-play transitions before the "
                                        "head (pre-trained features vary little around large offsets)")
    standardize_samples: int = option(10_000, "stored observations the feature statistics are fitted on",
                                      positive=True)

    def first_update(self) -> tuple[int, str]:
        return replay_first_update(self)


class DQN(Agent):
    name = "dqn"
    steps_envs_asynchronously = True
    config_class = DQNConfig
    config: DQNConfig
    compiled_methods = ("loss",)
    compiles_whole_steps = True
    compiles_whole_steps_on_gpu = True  # (on an H200 a compiled run matched its eager one to 1e-5)
    acting_methods = ("greedy_action",)
    sample_dim = 0  # the batch dimension of replay samples (K stacked seeds' samples are [K, B])
    # rl-baselines3-zoo's tuned CartPole values; CleanRL's dqn_atari.py for Atari (Mnih et al. 2015,
    # Extended Data Table 1); Rainbow's Atari values from Hessel et al. 2018, Table 1 and appendix.
    presets = {
        "classic": dict(num_envs=1, learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1_000,
                        gamma=0.99, target_update_interval=10, train_frequency=256, gradient_steps=128,
                        exploration_fraction=0.16, start_e=1.0, end_e=0.04, max_grad_norm=10.0, torch_threads=1,
                        encoder_options={"hidden_sizes": [256, 256], "activation": "relu"}),
        # rl-baselines3-zoo's tuned Acrobot and MountainCar values (its gradient_steps=-1: one per env step)
        "Acrobot-v1": dict(num_envs=1, learning_rate=6.3e-4, batch_size=128, buffer_size=50_000, learning_starts=0,
                           gamma=0.99, target_update_interval=250, train_frequency=4, gradient_steps=4,
                           exploration_fraction=0.12, start_e=1.0, end_e=0.1, max_grad_norm=10.0, torch_threads=1,
                           encoder_options={"hidden_sizes": [256, 256], "activation": "relu"}),
        "MountainCar-v0": dict(num_envs=1, learning_rate=4e-3, batch_size=128, buffer_size=10_000,
                               learning_starts=1_000, gamma=0.98, target_update_interval=600, train_frequency=16,
                               gradient_steps=8, exploration_fraction=0.2, start_e=1.0, end_e=0.07,
                               max_grad_norm=10.0, torch_threads=1,
                               encoder_options={"hidden_sizes": [256, 256], "activation": "relu"}),
        "atari": dict(num_envs=1, learning_rate=1e-4, batch_size=32, buffer_size=1_000_000, learning_starts=80_000,
                      gamma=0.99, target_update_interval=1_000, train_frequency=4, gradient_steps=1,
                      exploration_fraction=0.1, start_e=1.0, end_e=0.01, encoder="nature", eval_every=250_000,
                      checkpoint_every=250_000, log_every=10_000, env_options={"episodic_life": True}),
        # Pixel observations of a small task (e.g. reprl/DistractorCartPole-v0): Atari's DQN, shorter.
        "pixels": dict(num_envs=1, learning_rate=1e-4, batch_size=32, buffer_size=100_000, learning_starts=10_000,
                       gamma=0.99, target_update_interval=1_000, train_frequency=4, gradient_steps=1,
                       exploration_fraction=0.1, start_e=1.0, end_e=0.01, encoder="nature"),
        "rainbow:atari": dict(num_envs=1, learning_rate=6.25e-5, adam_eps=1.5e-4, batch_size=32, buffer_size=1_000_000,
                              learning_starts=20_000, gamma=0.99, n_step=3, target_update_interval=8_000,
                              train_frequency=4, gradient_steps=1, double=True, dueling=True, noisy=True,
                              noisy_sigma0=0.5, prioritized=True, priority_alpha=0.5, priority_beta=0.4,
                              distributional=True, atoms=51, v_min=-10.0, v_max=10.0, head_hidden=512,
                              max_grad_norm=10.0, loss="huber", encoder="nature", eval_every=250_000,
                              checkpoint_every=250_000, log_every=10_000, env_options={"episodic_life": True}),
        # CartPole's returns reach 100 with gamma = 0.99, hence the support; the rest as "classic".
        "rainbow:classic": dict(num_envs=1, learning_rate=2.3e-3, batch_size=64, buffer_size=100_000,
                                learning_starts=1_000, gamma=0.99, n_step=3, target_update_interval=10,
                                train_frequency=256, gradient_steps=128, double=True, dueling=True, noisy=True,
                                prioritized=True, priority_alpha=0.5, priority_beta=0.4, distributional=True,
                                atoms=51, v_min=0.0, v_max=100.0, max_grad_norm=10.0, torch_threads=1,
                                encoder_options={"hidden_sizes": [256, 256], "activation": "relu"}),
    }

    def __init__(self, config: DQNConfig, observation_space: spaces.Space, action_space: spaces.Space):
        super().__init__(config, observation_space, action_space)
        if not isinstance(action_space, spaces.Discrete):
            raise ValueError(f"dqn needs a discrete action space, got {action_space}")
        if config.distributional and not config.v_min < config.v_max:
            raise ValueError(f"v_min must be below v_max, got {config.v_min} and {config.v_max}")
        if config.replay_features and not config.freeze_encoder:
            raise ValueError("--replay-features needs --freeze-encoder: stored features go stale as an encoder trains")
        if config.standardize_features and not config.freeze_encoder:
            raise ValueError("--standardize-features needs --freeze-encoder: the statistics are fitted once")
        if config.replay_features and config.aux != "none":
            raise ValueError("--replay-features leaves no observations in replay for the --aux objectives")
        self.num_actions = int(action_space.n)
        self.q = QNetwork(build_encoder(config, observation_space), self.num_actions, config).to(self.device)
        self.q_target = QNetwork(build_encoder(config, observation_space, load_checkpoint=False),
                                 self.num_actions, config).to(self.device)
        self.q_target.load_state_dict(self.q.state_dict())
        self.q_target.requires_grad_(False)
        trainable = [p for p in self.q.parameters() if p.requires_grad] + self.attach_auxiliary(self.q.encoder)
        self.optimizer = flat_optimizer(FlatAdam, trainable, lr=config.learning_rate, eps=config.adam_eps)
        # The target network in one tensor tiled like the flat parameters: Polyak's step is one pass.
        pack_parameters(list(self.q_target.parameters()))
        self.buffer: ReplayBuffer | None = None
        self.step = 0
        self._since_train = 0
        self._since_target = 0
        # replay_features, per env: the features of the last ``next_obs`` stored, and whether they
        # are not those of the env's next ``obs`` (its episode ended, or nothing is stored yet)
        self._next_features: Tensor | None = None
        self._next_features_stale: Tensor | None = None

    # ------------------------------------------------------------------------ acting
    def epsilon(self, step: int) -> float:
        cfg = self.config
        if cfg.noisy:
            return 0.0
        return linear_schedule(cfg.start_e, cfg.end_e, cfg.exploration_fraction * cfg.steps, step)

    def representation_encoder(self) -> nn.Module:
        return self.q.encoder

    @torch.no_grad()
    def act(self, obs: Tensor, explore: bool = True, epsilon: float | None = None) -> Tensor:
        """Greedy actions (``explore=False``: without NoisyNet noise), else epsilon-greedy."""
        if explore and self.config.noisy:
            self.reset_noise(self.q)
        eps = self.epsilon(self.step) if epsilon is None else epsilon
        if not explore or eps <= 0.0:
            return self.greedy_action(obs, explore)
        count = obs.shape[0]
        return self.epsilon_greedy(obs, torch.full((), eps, device=self.device), self.random_actions(count),
                                   self.uniforms(count))

    def epsilon_greedy(self, obs: Tensor, epsilon: Tensor, random_actions: Tensor, uniforms: Tensor) -> Tensor:
        """Per row of ``obs``, the row's ``random_actions`` where its ``uniforms`` < ``epsilon``,
        else the greedy action: the network call of every exploring step. The draws come in as
        arguments, drawn eagerly in this order: in a compiled graph inductor orders independent
        draws as it likes (PyTorch 2.11 drew the uniforms first), which would change the numbers."""
        return torch.where(uniforms < epsilon, random_actions, self.greedy_action(obs, True))

    def reset_noise(self, network: nn.Module) -> None:
        """Fresh NoisyNet noise for ``network`` (``q`` or ``q_target``)."""
        network.head.reset_noise()

    def greedy_action(self, obs: Tensor, noise: bool) -> Tensor:
        """argmax_a Q(obs, a): the network call of every step."""
        return self.q.q_values(obs, noise).argmax(dim=1)

    def random_actions(self, count: int) -> Tensor:
        """``count`` uniformly random actions (one per env)."""
        return torch.randint(self.num_actions, (count,), device=self.device)

    def uniforms(self, count: int) -> Tensor:
        """``count`` draws from U[0, 1) (one per env), that epsilon-greedy compares with epsilon."""
        return torch.rand(count, device=self.device)

    # ---------------------------------------------------------------------- learning
    def greedy_next_action(self, batch: Batch, next_q_target: Tensor) -> Tensor:
        """argmax_a' of the target net's Q(s', a'), or of the online net's with ``double``: ``[B]``."""
        chooser = self.q.q_values(batch.next_obs, encoded=self.config.replay_features) if self.config.double \
            else next_q_target
        return chooser.argmax(dim=-1)

    def next_action_probs(self, batch: Batch, next_q_target: Tensor, epsilon: Tensor) -> Tensor:
        """pi(a' | s') ``[..., A]`` that the target line averages the next values over."""
        greedy = nn.functional.one_hot(self.greedy_next_action(batch, next_q_target), self.num_actions).float()
        if self.config.target == "q_learning":
            return greedy
        expected = greedy * (1.0 - epsilon) + epsilon / self.num_actions
        if self.config.target == "expected_sarsa":
            return expected
        # SARSA: the action taken next; where the window ended by truncation none was taken at
        # the final observation (the buffer marks it -1), so the policy's expectation stands in.
        taken = batch.next_action.long()
        sarsa = nn.functional.one_hot(taken.clamp(min=0), self.num_actions).float()
        return torch.where((taken >= 0).unsqueeze(-1), sarsa, expected)

    @torch.no_grad()
    def td_target(self, batch: Batch, epsilon: Tensor | None = None) -> Tensor:
        """Scalar targets ``[..., B]``, or target distributions ``[..., B, atoms]`` when
        distributional (a batch of ``[..., B]`` transitions); ``epsilon`` (default: the current
        one) is the behaviour policy's, for the SARSA targets."""
        if epsilon is None:
            epsilon = self.current_epsilon()
        out = self.q_target(batch.next_obs, encoded=self.config.replay_features)
        if not self.config.distributional:
            if self.config.target == "q_learning":  # pi is one-hot: the expectation is one value
                next_value = out.gather(-1, self.greedy_next_action(batch, out).unsqueeze(-1)).squeeze(-1)
            else:
                next_value = (self.next_action_probs(batch, out, epsilon) * out).sum(-1)
            return batch.reward + batch.discount * (1.0 - batch.terminated) * next_value
        next_dist = out.softmax(-1)
        probs = self.next_action_probs(batch, (next_dist * self.q_target.support).sum(-1), epsilon)
        mixture = (probs[..., None] * next_dist).sum(-2)
        return project_distribution(mixture, batch.reward, batch.discount, batch.terminated, self.q_target.support)

    def round_targets(self, sample: Batch, epsilon: Tensor) -> Tensor:
        """A training round's ``td_target``: the call ``--compile`` traces (the loss calls ``td_target``)."""
        return self.td_target(sample, epsilon)

    def current_epsilon(self) -> Tensor:
        """Epsilon at the current step, as a tensor: compiled code reads it without recompiling."""
        return torch.full((), self.epsilon(self.step), device=self.device)

    def update(self, batch: Batch) -> dict[str, Tensor]:
        batch = self.auxiliary_view(batch)
        if self.config.noisy:  # fresh noise for both networks, drawn outside the compiled loss
            self.reset_noise(self.q)
            self.reset_noise(self.q_target)
        priority, metrics = self.gradient_step(self.optimizer, batch, self.config.max_grad_norm, batch,
                                               self.current_epsilon())
        if self.buffer is not None:
            self.buffer.update_priorities(batch.indices, priority)
        return metrics

    def loss(self, batch: Batch, epsilon: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """The TD loss weighted by ``batch.weights`` (a mean over the last batch dimension, so
        ``[K, B]`` batches of K stacked seeds give K losses), the new priorities and the detached terms."""
        target = self.td_target(batch, epsilon) if batch.target is None else batch.target
        out = self.q(batch.obs, encoded=self.config.replay_features)
        action = batch.action.long().unsqueeze(-1)
        if self.config.distributional:
            log_probs = out.log_softmax(-1).gather(-2, action[..., None].expand(*action.shape, out.shape[-1]))
            log_probs = log_probs.squeeze(-2)
            per_sample = -(target * log_probs).sum(-1)  # cross-entropy: the KL up to a constant
            priority = per_sample.detach()
            q = (log_probs.exp() * self.q.support).sum(-1)
        else:
            q = out.gather(-1, action).squeeze(-1)
            if self.config.loss == "huber":
                per_sample = F.smooth_l1_loss(q, target, reduction="none")
            else:
                per_sample = 0.5 * (q - target).square()
            priority = (q - target).detach().abs()
        loss = (batch.weights * per_sample).mean(-1)
        return loss, priority, {"losses/td_loss": loss.detach(), "losses/q_values": q.detach().mean(-1)}

    @torch.no_grad()
    def update_target(self) -> None:
        """tau = 1: the target becomes a copy (parameters and buffers, one fused copy: the Nature
        DQN's periodic sync); tau < 1: Polyak averaging of the parameters."""
        if self.config.tau < 1.0:
            if "_polyak_pair" not in self.__dict__:  # listed once, as below
                self._polyak_pair = momentum_pair(self.q_target, self.q)
            momentum_step_(*self._polyak_pair, 1.0 - self.config.tau)
            return
        if "_synced" not in self.__dict__:  # listed once: walking the modules cost more than the copy
            self._synced = ([*self.q_target.parameters(), *self.q_target.buffers()],
                            [*self.q.parameters(), *self.q.buffers()])
        torch._foreach_copy_(*self._synced)

    def priority_beta(self) -> float:
        """Importance-sampling exponent, annealed linearly to 1 (Schaul et al. 2016, sec. 3.4)."""
        beta0 = self.config.priority_beta
        return beta0 + (1.0 - beta0) * min(1.0, self.step / max(self.config.steps, 1))

    def training_batches(self):
        """One batch per gradient step of a training round. Uniform samples are i.i.d. and the
        buffer does not change within a round, so they are drawn in one call (a large saving for
        small networks), and where the targets depend on the target network alone, which changes
        only between rounds, they are computed for the whole round in one forward pass;
        prioritized samples are drawn one by one, after each priority update."""
        cfg = self.config
        if not cfg.prioritized:
            sample = self.buffer.sample(cfg.batch_size * cfg.gradient_steps)
            if cfg.gradient_steps > 1 and not (cfg.double or cfg.noisy):
                sample = replace(sample, target=self.round_targets(sample, self.current_epsilon()))
            yield from sample.chunk(cfg.gradient_steps, dim=self.sample_dim)
            return
        for _ in range(cfg.gradient_steps):
            yield self.buffer.sample(cfg.batch_size, beta=self.priority_beta())

    # ------------------------------------------------------------------- runner hooks
    def setup_training(self, num_envs: int) -> None:
        cfg = self.config
        stored_space, frame_stack = self.observation_space, 1
        if cfg.replay_features:
            stored_space = spaces.Box(-np.inf, np.inf, (self.q.encoder.out_dim,), np.float32)
        elif is_atari(cfg.env):
            frame_stack = self.observation_space.shape[0]
        self.buffer = ReplayBuffer(cfg.buffer_size, num_envs, stored_space, self.action_space,
                                   self.device, frame_stack=frame_stack, n_step=cfg.n_step, gamma=cfg.gamma,
                                   prioritized=cfg.prioritized, alpha=cfg.priority_alpha,
                                   priority_eps=cfg.priority_eps)
        self.trace_methods("epsilon_greedy", "round_targets")  # (the methods they call stay methods)
        compile_replay_adds(self, self.buffer)

    def rollout_action(self, obs: Tensor, step: int) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        self.step = step
        if step < self.config.learning_starts:
            action = self.random_actions(obs.shape[0])
        else:
            action = self.act(obs, explore=True)
        return action, action, {}

    def observe(self, obs, action, reward, next_obs, terminated, truncated, extras, env_ids=None) -> None:
        if self.config.replay_features:
            obs, next_obs = self.replay_features(obs, next_obs, terminated | truncated, env_ids)
        self.buffer.add(obs, action, reward, next_obs, terminated, truncated, env_ids)

    @torch.no_grad()
    def replay_features(self, obs: Tensor, next_obs: Tensor, ended: Tensor,
                        env_ids: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The frozen encoder's features of ``obs`` and ``next_obs`` (of the envs ``env_ids``, or
        all). Where an env's episode went on, ``obs`` is its previous ``next_obs``, whose features
        are reused: replay costs one encoder pass per step (acting makes its own)."""
        encoder = self.q.encoder
        envs = slice(None) if env_ids is None else env_ids
        next_features = encoder(next_obs)
        if self._next_features is None:
            self._next_features = next_features.new_zeros((self.buffer.num_envs, next_features.shape[1]))
            self._next_features_stale = torch.ones(self.buffer.num_envs, dtype=torch.bool, device=self.device)
        obs_features = self._next_features[envs].clone()
        stale = self._next_features_stale[envs]
        if bool(stale.any()):
            obs_features[stale] = encoder(obs[stale])
        self._next_features[envs] = next_features
        self._next_features_stale[envs] = ended
        return obs_features, next_features

    def after_step(self, next_obs: Tensor, step: int) -> dict[str, Tensor] | None:
        cfg = self.config
        self.step = step
        metrics = None
        num_envs = next_obs.shape[0] // self.num_seeds  # each seed's (``agents.multi_seed``)
        # (a learning_starts below n + 1 steps per env waits for the first sampleable transitions)
        if step > cfg.learning_starts and self.buffer.surely_sampleable():
            if cfg.standardize_features and not bool(self.q.standardize.fitted):
                self.fit_feature_statistics()
            self._since_train += num_envs
            while self._since_train >= cfg.train_frequency:
                self._since_train -= cfg.train_frequency
                for batch in self.training_batches():
                    metrics = self.update(batch)
        self._since_target += num_envs
        if self._since_target >= cfg.target_update_interval:
            self._since_target %= cfg.target_update_interval
            self.update_target()
        if metrics is not None:
            metrics["charts/epsilon"] = torch.tensor(self.epsilon(step))
        return metrics

    @torch.no_grad()
    def fit_feature_statistics(self) -> None:
        """Fits both networks' ``FeatureStandardizer`` on up to ``standardize_samples`` stored
        observations (uniformly drawn; before any update, prioritized replay is uniform too)."""
        obs = self.buffer.sample(min(len(self.buffer), self.config.standardize_samples)).obs
        features = obs if self.config.replay_features else encode(self.q.encoder, obs)
        self.q.standardize.fit(features)
        self.q_target.standardize.load_state_dict(self.q.standardize.state_dict())

    def training_state(self, include_buffer: bool = True) -> dict[str, Any]:
        state = {"optimizer": self.optimizer.state_dict(), "since_train": self._since_train,
                 "since_target": self._since_target, "step": self.step}
        if include_buffer and self.config.checkpoint_replay and self.buffer is not None:
            state["buffer"] = self.buffer.state_dict()
        return state

    def episodes_restarted(self) -> None:
        super().episodes_restarted()
        self._next_features = None

    def load_training_state(self, state: dict[str, Any]) -> None:
        self._next_features = None
        self.optimizer.load_state_dict(state["optimizer"])
        self._since_train, self._since_target = state["since_train"], state["since_target"]
        self.step = state["step"]
        if "buffer" in state and self.buffer is not None:
            self.buffer.load_state_dict(state["buffer"])
