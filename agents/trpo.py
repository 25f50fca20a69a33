"""Trust Region Policy Optimization (Schulman et al. 2015), with GAE advantages (Schulman et al.
2016) and a critic fitted by its own optimiser.

Per rollout, the policy takes one natural-gradient step on the surrogate
``L(theta) = mean(pi_theta(a|s) / pi_old(a|s) * A)`` subject to ``mean KL(pi_old || pi_theta) <= max_kl``
(eq. 14): the direction ``x = F^-1 g`` comes from conjugate gradient on Fisher-vector products
``F v = d/dtheta (grad KL . v) + damping v`` (double backprop, appendix C), the step is scaled so
that the quadratic model of the KL equals ``max_kl`` (``beta = sqrt(2 max_kl / x^T F x)``), and a
backtracking line search keeps the largest fraction of it that improves the surrogate and keeps
the mean KL within ``max_kl``; if none does, the policy stays where it was.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from gymnasium import spaces
from torch import Tensor
from torch.distributions import Categorical, Distribution, Independent, Normal, kl_divergence

from agents.base import Agent
from agents.config import option
from agents.conjugate_gradient import conjugate_gradient
from agents.on_policy import OnPolicyConfig, OnPolicyRollouts
from replay import Batch


@dataclass
class TRPOConfig(OnPolicyConfig):
    # Defaults are sb3-contrib's TRPO defaults.
    learning_rate: float = option(1e-3, "critic's Adam learning rate", positive=True)
    anneal_lr: bool = option(False, "decay the critic's learning rate linearly to 0 over --steps")
    num_steps: int = option(2048, "steps per environment in each rollout", positive=True)
    ent_coef: float = option(0.0, "entropy bonus added to the surrogate", bounds=(0.0, float("inf")))
    max_grad_norm: float = option(0.0, "critic gradient clipping by global norm (0: off)", bounds=(0.0, float("inf")))
    max_kl: float = option(0.01, "trust region: largest mean KL(old || new) a policy step may reach", positive=True)
    cg_iters: int = option(15, "conjugate-gradient iterations for the natural-gradient direction", positive=True)
    cg_damping: float = option(0.1, "damping added to the Fisher matrix (F + damping I)", bounds=(0.0, float("inf")))
    line_search_shrink: float = option(0.8, "backtracking factor of the line search", bounds=(0.0, 1.0),
                                        positive=True, upper_open=True)
    line_search_iters: int = option(10, "step sizes the line search tries", positive=True)
    critic_updates: int = option(10, "critic epochs over each rollout", positive=True)
    critic_batch_size: int = option(128, "critic minibatch size", positive=True)


def backtracking_line_search(evaluate: Callable[[Tensor], tuple[Tensor, Tensor]], max_kl: float,
                             shrink: float, iters: int, shape: tuple[int, ...] = (),
                             device: torch.device | None = None) -> Tensor:
    """The first fraction ``shrink ** i`` (i < iters) of the full step whose ``evaluate(fraction)
    -> (surrogate improvement, mean KL)`` improves the surrogate within the KL bound; 0 if none.

    Fractions, improvements and KLs are tensors of ``shape``, one entry per policy (K seeds'
    policies searched together); an entry keeps the first fraction it accepts while the others
    go on shrinking."""
    fraction = torch.ones(shape, device=device)
    accepted = torch.zeros(shape, dtype=torch.bool, device=device)
    for _ in range(iters):
        improvement, kl = evaluate(fraction)
        accepted |= (improvement > 0.0) & (kl <= max_kl)
        if bool(accepted.all()):
            break
        fraction = torch.where(accepted, fraction, fraction * shrink)
    return torch.where(accepted, fraction, 0.0)


# The ActorCritic modules the trust-region step moves; the critic's are fitted by the optimiser.
POLICY_MODULES = ("encoder", "policy")


class TRPO(OnPolicyRollouts, Agent):
    name = "trpo"
    config_class = TRPOConfig
    config: TRPOConfig
    # The policy step's Fisher-vector products need double backward, which compiled graphs do
    # not support: only the critic's loss is compiled.
    compiled_methods = ("critic_loss",)
    # rl-baselines3-zoo hyperparams/trpo.yml (sb3-contrib), "Tuned" entries, on sb3-contrib's
    # defaults and SB3's MlpPolicy (separate 64-64 tanh actor and critic). Pendulum's gSDE is not
    # implemented here; the Gaussian starts narrower instead (log_std_init).
    presets = {
        "classic": dict(num_envs=2, num_steps=512, critic_batch_size=512, cg_damping=1e-3, gae_lambda=0.98,
                        gamma=0.99, learning_rate=1e-3, critic_updates=20, shared_encoder=False, torch_threads=1,
                        encoder_options={"hidden_sizes": [64, 64], "activation": "tanh"}),
        "Pendulum-v1": dict(num_envs=2, num_steps=1024, gamma=0.9, critic_updates=15, shared_encoder=False,
                            log_std_init=-0.5, torch_threads=1,
                            encoder_options={"hidden_sizes": [64, 64], "activation": "tanh"}),
        **{env_id: dict(num_envs=2, num_steps=1024, critic_updates=critic_updates, normalize_obs=True,
                        normalize_reward=True, shared_encoder=False, torch_threads=1,
                        encoder_options={"hidden_sizes": [64, 64], "activation": "tanh"})
           for env_id, critic_updates in (("Acrobot-v1", 10), ("MountainCar-v0", 20))},
        "box": dict(num_envs=1, num_steps=1024, gamma=0.99, gae_lambda=0.95, critic_updates=20,
                    critic_batch_size=128, normalize_obs=True, shared_encoder=False, torch_threads=1,
                    encoder_options={"hidden_sizes": [64, 64], "activation": "tanh"}),
    }

    def __init__(self, config: TRPOConfig, observation_space: spaces.Space, action_space: spaces.Space):
        super().__init__(config, observation_space, action_space)
        if config.shared_encoder:
            raise ValueError("trpo needs separate actor and critic networks: use --shared-encoder false")
        self.init_actor_critic(observation_space, action_space)
        self.policy_params, critic_params = split_parameters(self.net.named_parameters())
        # Auxiliary objectives shape the critic's encoder: the policy moves only by trust-region steps.
        critic_params += self.attach_auxiliary(self.net.critic_encoder)
        self.optimizer = torch.optim.Adam(critic_params, lr=config.learning_rate, eps=config.adam_eps)

    # The policy's parameters as one vector per policy: ``[P]``, or ``[K, P]`` for K stacked seeds
    # (``agents.multi_seed_on_policy``), whose parameters carry the seed as a leading dimension.
    seed_shape: tuple[int, ...] = ()

    def to_vector(self, tensors: list[Tensor]) -> Tensor:
        return torch.cat([t.reshape(*self.seed_shape, -1) for t in tensors], dim=-1)

    def from_vector(self, vector: Tensor) -> list[Tensor]:
        """``to_vector``'s inverse: a contiguous tensor shaped as each of the policy's parameters.
        (Contiguous: views into a ``[K, P]`` vector start each seed's rows at another alignment,
        and the batched products of the Fisher-vector product then round each seed differently.)"""
        tensors, offset = [], 0
        for param in self.policy_params:
            size = param.numel() // math.prod(self.seed_shape)
            tensors.append(vector[..., offset:offset + size].reshape(param.shape).contiguous())
            offset += size
        return tensors

    @torch.no_grad()
    def set_policy_vector(self, vector: Tensor) -> None:
        for param, value in zip(self.policy_params, self.from_vector(vector), strict=True):
            param.copy_(value)

    def surrogate(self, batch: Batch, advantage: Tensor) -> tuple[Tensor, Distribution]:
        """Eq. 14's objective (plus the entropy bonus) and the policy it was computed with; every
        mean runs over the last dimension (one objective per seed when K seeds are stacked)."""
        dist = self.net.policy_distribution(batch.obs)
        ratio = (dist.log_prob(batch.action) - batch.log_prob).exp()
        return (ratio * advantage).mean(-1) + self.config.ent_coef * dist.entropy().mean(-1), dist

    def fisher_vector_product(self, obs: Tensor) -> Callable[[Tensor], Tensor]:
        """``v -> (F + damping I) v`` at the current policy, F the Hessian of the mean
        ``KL(pi_current || pi_theta)`` on ``obs``, by double backprop (appendix C.1)."""
        params = self.policy_params
        dist = self.net.policy_distribution(obs)
        kl = kl_divergence(_detached(dist), dist).mean(-1).sum()  # a sum over seeds when K are stacked
        kl_gradient = torch.autograd.grad(kl, params, create_graph=True)

        def product(vector: Tensor) -> Tensor:
            # d/dtheta (grad KL . v): the backward of grad KL with v as its output gradient
            hessian_vector = torch.autograd.grad(kl_gradient, params, self.from_vector(vector), retain_graph=True)
            return self.to_vector(hessian_vector) + self.config.cg_damping * vector
        return product

    def policy_step(self, batch: Batch) -> dict[str, Tensor]:
        cfg, params = self.config, self.policy_params
        advantage = self.normalized_advantage(batch.advantage)
        objective, dist = self.surrogate(batch, advantage)
        old_dist = _detached(dist)
        gradient = self.to_vector(torch.autograd.grad(objective.sum(), params))
        fisher_vector_product = self.fisher_vector_product(batch.obs)
        direction = conjugate_gradient(fisher_vector_product, gradient, cfg.cg_iters)
        curvature = (direction * fisher_vector_product(direction)).sum(-1, keepdim=True)
        full_step = direction * torch.sqrt(2.0 * cfg.max_kl / curvature.clamp_min(1e-12))
        old_params = self.to_vector(params).detach()
        old_objective = objective.detach()

        @torch.no_grad()
        def evaluate(fraction: Tensor) -> tuple[Tensor, Tensor]:
            self.set_policy_vector(old_params + fraction.unsqueeze(-1) * full_step)
            new_objective, new_dist = self.surrogate(batch, advantage)
            return new_objective - old_objective, kl_divergence(old_dist, new_dist).mean(-1)

        fraction = backtracking_line_search(evaluate, cfg.max_kl, cfg.line_search_shrink, cfg.line_search_iters,
                                            self.seed_shape, self.device)
        self.set_policy_vector(old_params + fraction.unsqueeze(-1) * full_step)
        with torch.no_grad():
            new_objective, new_dist = self.surrogate(batch, advantage)
            kl = kl_divergence(old_dist, new_dist).mean(-1)
        return {"losses/policy_objective": new_objective, "losses/kl": kl,
                "losses/step_fraction": fraction, "losses/entropy": new_dist.entropy().mean(-1),
                "losses/grad_norm": gradient.norm(dim=-1), "losses/surrogate_gain": new_objective - old_objective}

    def update(self, batch: Batch) -> dict[str, Tensor]:
        """One critic gradient step on ``batch``."""
        value_loss = self.critic_loss(batch)
        metrics = self.optimizer_step(self.optimizer, value_loss, batch, self.config.max_grad_norm)
        return {"losses/value_loss": value_loss.detach(), **metrics}

    def critic_loss(self, batch: Batch) -> Tensor:
        """``(V(s) - R)^2 / 2``, averaged over ``batch``'s last dimension."""
        return 0.5 * (self.net.value(batch.obs) - batch.returns).square().mean(-1)

    def train_on_rollout(self) -> dict[str, Tensor]:
        cfg = self.config
        self.anneal_learning_rate()
        metrics = self.policy_step(self.buffer.whole_rollout())
        total = self.buffer.num_steps * self.buffer.num_envs // self.num_seeds  # one seed's transitions
        for batch in self.buffer.minibatches(max(1, math.ceil(total / cfg.critic_batch_size)), cfg.critic_updates):
            metrics.update(self.update(batch))
        return metrics


def split_parameters(named_parameters: Iterable[tuple[str, Tensor]]) -> tuple[list[Tensor], list[Tensor]]:
    """An ``ActorCritic``'s trainable parameters, by name: the policy's (``POLICY_MODULES``), the critic's."""
    policy, critic = [], []
    for name, param in named_parameters:
        if param.requires_grad:
            (policy if name.split(".")[0] in POLICY_MODULES else critic).append(param)
    return policy, critic


def _detached(dist: Distribution) -> Distribution:
    """The same distribution with its parameters cut from the graph (pi_old of the KL)."""
    if isinstance(dist, Categorical):
        return Categorical(logits=dist.logits.detach(), validate_args=False)
    if isinstance(dist, Independent) and isinstance(dist.base_dist, Normal):
        base = dist.base_dist
        return Independent(Normal(base.loc.detach(), base.scale.detach(), validate_args=False),
                           dist.reinterpreted_batch_ndims, validate_args=False)
    raise ValueError(f"trpo cannot take the KL of a {type(dist).__name__} policy")
