"""SAC for K seeds in one process (``agents.multi_seed``): stacked critics, target critics and
actor, a temperature per seed, each seed's action noise and random play drawn with its own
generator, and a replay buffer whose samples keep the seeds apart."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from agents.multi_seed import MultiSeed
from agents.sac import SAC
from agents.seed_stack import SeedStack
from replay.grouped_replay_buffer import GroupedReplayBuffer


class StackedNetwork(nn.Module):
    """K copies of a network called on ``[K, B, ...]`` inputs (row k by copy k)."""

    def __init__(self, networks: list[nn.Module]):
        super().__init__()
        self.stack = SeedStack(networks)

    def forward(self, *inputs: Tensor):
        return self.stack.call("forward", *inputs)


class StackedTwinQ(StackedNetwork):
    """K ``TwinQ`` critics, with their encoders' features for an actor that shares them."""

    def encoder(self, obs: Tensor) -> Tensor:
        return self.stack.call("encoder", obs)


class StackedPolicyHead(StackedNetwork):
    """K actor heads: logits (discrete) or ``TanhGaussianHead.sample`` (continuous)."""

    def sample(self, features: Tensor, noise: Tensor | None = None,
               deterministic: bool = False) -> tuple[Tensor, Tensor]:
        inputs = (features,) if noise is None else (features, noise)
        return self.stack.call("sample", *inputs, deterministic=deterministic)


class MultiSeedSAC(MultiSeed, SAC):
    """SAC (continuous and discrete actions, own or shared actor encoder) for K seeds at once."""

    seed_agent_class = SAC
    stacked_networks = {"critic": StackedTwinQ, "critic_target": StackedTwinQ, "actor_encoder": StackedNetwork,
                        "actor_trunk": StackedNetwork, "actor_head": StackedPolicyHead}

    def stack_seeds(self) -> None:
        super().stack_seeds()
        # The seeds' temperatures as one [K, 1] parameter: alpha broadcasts against [K, B] rows.
        log_alphas = torch.stack([agent.log_alpha.detach() for agent in self._per_seed])
        self.log_alpha = nn.Parameter(log_alphas.unsqueeze(-1), requires_grad=self.config.autotune)
        self.encoder = None  # the critics' encoder lives in the stacked critics

    def optimized_parameters(self) -> dict[str, list[Tensor]]:
        return {"actor_optimizer": self.actor_parameters(),
                "critic_optimizer": [p for p in self.critic.parameters() if p.requires_grad],
                "alpha_optimizer": [self.log_alpha]}

    def seed_agents(self) -> list[SAC]:
        agents = super().seed_agents()
        for agent, log_alpha in zip(agents, self.log_alpha.detach()[:, 0]):
            agent.log_alpha.data.copy_(log_alpha)
        return agents

    def policy_action(self, obs: Tensor, explore: bool) -> Tensor:
        return super().policy_action(self._by_seed(obs), explore).flatten(0, 1)

    def policy_noise(self, batch_shape: torch.Size) -> Tensor:
        return self.seed_normal((*batch_shape[1:], self.action_dim))

    def sample_categorical(self, probs: Tensor) -> Tensor:
        return self.seed_categorical(probs)

    def random_actions(self, count: int, generator: torch.Generator | None = None) -> Tensor:
        """Each seed's share of ``count`` drawn with the seed's own generator (not ``generator``)."""
        per_seed = count // self.num_seeds
        return self.seed_draws(lambda g: super(MultiSeedSAC, self).random_actions(per_seed, g)).flatten(0, 1)

    def setup_training(self, num_envs: int) -> None:
        cfg = self.config
        self.buffer = GroupedReplayBuffer(cfg.buffer_size, num_envs, self.observation_space, self.action_space,
                                          self.device, self.generators, n_step=cfg.n_step, gamma=cfg.gamma)
