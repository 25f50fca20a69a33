"""Synchronous advantage actor-critic, A2C (Mnih et al. 2016, "Asynchronous Methods for Deep RL",
Algorithm S3, run synchronously over N envs as in OpenAI Baselines).

One gradient step per rollout of ``num_steps`` steps from each env on
``-A_t log pi(a_t|s_t) - ent_coef H(pi(.|s_t)) + vf_coef (V(s_t) - R_t)^2`` (eq. S3's gradients,
and the squared error without a half of OpenAI Baselines and Stable-Baselines3, whose ``vf_coef``
values the presets take), where the advantage is

* ``td``: the one-step TD error ``r_t + gamma V(s_{t+1}) - V(s_t)`` (GAE with lambda = 0);
* ``nstep``: the n-step return to the rollout's end minus ``V(s_t)`` (GAE with lambda = 1, the
  paper's estimator);
* ``gae``: GAE with ``gae_lambda`` (Schulman et al. 2016, eq. 16).

``num_steps=1`` with ``advantage=td`` is the online one-step actor-critic (Sutton & Barto 2018,
section 13.5) run on N envs at once.
"""
from __future__ import annotations

from dataclasses import dataclass

from gymnasium import spaces
from torch import Tensor

from agents.base import Agent
from agents.config import option
from agents.flat_parameters import FlatAdam, FlatRMSprop, flat_optimizer
from agents.on_policy import OnPolicyConfig, OnPolicyRollouts
from replay import Batch

ADVANTAGE_LAMBDA = {"td": 0.0, "nstep": 1.0}


@dataclass
class A2CConfig(OnPolicyConfig):
    # Defaults are Stable-Baselines3's A2C defaults (those of OpenAI Baselines' a2c).
    learning_rate: float = option(7e-4, "optimiser learning rate", positive=True)
    anneal_lr: bool = option(False, "decay the learning rate linearly to 0 over --steps")
    num_steps: int = option(5, "steps per environment in each rollout (n of the n-step return)", positive=True)
    advantage: str = option("nstep", "advantage estimate: td (one-step), nstep (to the rollout end) or gae",
                            choices=("td", "nstep", "gae"))
    gae_lambda: float = option(1.0, "GAE lambda, used by --advantage gae", bounds=(0.0, 1.0))
    norm_adv: bool = option(False, "normalise advantages within each rollout")
    ent_coef: float = option(0.0, "entropy bonus coefficient", bounds=(0.0, float("inf")))
    optimizer: str = option("rmsprop", "rmsprop (as in the paper) or adam", choices=("rmsprop", "adam"))
    rmsprop_alpha: float = option(0.99, "RMSprop smoothing constant", bounds=(0.0, 1.0), upper_open=True)
    adam_eps: float = option(1e-5, "optimiser epsilon (RMSprop or Adam)", positive=True)


class A2C(OnPolicyRollouts, Agent):
    name = "a2c"
    config_class = A2CConfig
    config: A2CConfig
    compiled_methods = ("loss",)
    compiles_whole_steps = True
    # rl-baselines3-zoo hyperparams/a2c.yml: CartPole-v1 (n_envs 8, ent_coef 0, 5e5 steps) on SB3's
    # defaults with its MlpPolicy (separate 64-64 tanh actor and critic); Atari (n_envs 16,
    # ent_coef 0.01, vf_coef 0.25, RMSprop eps 1e-5); Pendulum-v1 (n_envs 8, n_steps 8, gamma 0.9,
    # gae_lambda 0.9, vf_coef 0.4, normalised observations; its gSDE is not implemented here); other
    # continuous-action envs (n_envs 4, n_steps 8, gamma 0.99, gae_lambda 0.9, vf_coef 0.4, lr 7e-4
    # decayed to 0, normalised observations and rewards: its LunarLanderContinuous-v2 and PyBullet
    # entries, again without gSDE).
    presets = {
        "classic": dict(num_envs=8, num_steps=5, advantage="nstep", gamma=0.99, ent_coef=0.0, vf_coef=0.5,
                        learning_rate=7e-4, max_grad_norm=0.5, shared_encoder=False, torch_threads=1,
                        encoder_options={"hidden_sizes": [64, 64], "activation": "tanh"}),
        "atari": dict(num_envs=16, num_steps=5, advantage="nstep", gamma=0.99, ent_coef=0.01, vf_coef=0.25,
                      learning_rate=7e-4, max_grad_norm=0.5, shared_encoder=True, encoder="nature",
                      eval_every=100_000, checkpoint_every=100_000, log_every=10_000,
                      env_options={"episodic_life": True}),
        "box": dict(num_envs=4, num_steps=8, advantage="gae", gae_lambda=0.9, gamma=0.99, ent_coef=0.0, vf_coef=0.4,
                    learning_rate=7e-4, anneal_lr=True, max_grad_norm=0.5, normalize_obs=True, normalize_reward=True,
                    log_std_init=-2.0, shared_encoder=False, torch_threads=1,
                    encoder_options={"hidden_sizes": [64, 64], "activation": "tanh"}),
        # rl-baselines3-zoo's Acrobot and MountainCar values: 16 envs and normalisation on SB3's defaults
        **{env_id: dict(num_envs=16, num_steps=5, advantage="nstep", gamma=0.99, ent_coef=0.0, vf_coef=0.5,
                        learning_rate=7e-4, max_grad_norm=0.5, normalize_obs=True, normalize_reward=True,
                        shared_encoder=False, torch_threads=1,
                        encoder_options={"hidden_sizes": [64, 64], "activation": "tanh"})
           for env_id in ("Acrobot-v1", "MountainCar-v0")},
        "Pendulum-v1": dict(num_envs=8, num_steps=8, advantage="gae", gae_lambda=0.9, gamma=0.9, ent_coef=0.0,
                            vf_coef=0.4, learning_rate=7e-4, anneal_lr=True, max_grad_norm=0.5,
                            normalize_obs=True, log_std_init=-2.0, shared_encoder=False, torch_threads=1,
                            encoder_options={"hidden_sizes": [64, 64], "activation": "tanh"}),
    }

    def __init__(self, config: A2CConfig, observation_space: spaces.Space, action_space: spaces.Space):
        super().__init__(config, observation_space, action_space)
        self.init_actor_critic(observation_space, action_space)
        params = [p for p in self.net.parameters() if p.requires_grad] + self.attach_auxiliary(self.net.encoder)
        if config.optimizer == "rmsprop":
            self.optimizer = flat_optimizer(FlatRMSprop, params, lr=config.learning_rate,
                                            alpha=config.rmsprop_alpha, eps=config.adam_eps)
        else:
            self.optimizer = flat_optimizer(FlatAdam, params, lr=config.learning_rate, eps=config.adam_eps)

    def advantage_lambda(self) -> float:
        return ADVANTAGE_LAMBDA.get(self.config.advantage, self.config.gae_lambda)

    def update(self, batch: Batch) -> dict[str, Tensor]:
        (metrics,) = self.gradient_step(self.optimizer, batch, self.config.max_grad_norm, batch)
        return metrics

    def loss(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """The loss to minimise and its detached terms; every mean runs over the last dimension,
        so batches of ``[K, B]`` (K seeds stepped together, ``agents.multi_seed``) give K losses."""
        cfg = self.config
        log_prob, entropy, value = self.net.evaluate_actions(batch.obs, batch.action)
        advantage = self.normalized_advantage(batch.advantage)
        policy_loss = -(advantage * log_prob).mean(-1)
        value_loss = (value - batch.returns).square().mean(-1)
        entropy = entropy.mean(-1)
        # A zero bonus leaves the entropy out of the loss, and so out of backward (it is only logged).
        loss = (policy_loss - cfg.ent_coef * entropy if cfg.ent_coef else policy_loss) + cfg.vf_coef * value_loss
        return loss, {"losses/policy_loss": policy_loss.detach(), "losses/value_loss": value_loss.detach(),
                      "losses/entropy": entropy.detach()}

    def train_on_rollout(self) -> dict[str, Tensor]:
        self.anneal_learning_rate()
        return self.update(self.buffer.whole_rollout())
