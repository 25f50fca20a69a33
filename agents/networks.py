"""Building blocks the agents put on top of any encoder: encoder set-up, heads, policies."""
from __future__ import annotations

import math
from pathlib import Path

import torch
from gymnasium import spaces
from torch import Tensor, nn
from torch.distributions import Categorical, Independent, Normal

from representation.encoders import (Encoder, default_encoder_name, load_encoder_weights, make_encoder,
                                     read_encoder_file)
from representation.linear import Linear
from representation.files import load_tagged


def read_encoder_source(path: str) -> dict:
    """An encoder file's contents, or those of the representation of the agent in an agent file
    or a run's ``checkpoint.pt`` (``Agent.encoder_payload``)."""
    from agents.base import AGENT_FORMAT, Agent  # not at the top: agents.base builds on this module

    try:
        return read_encoder_file(path)
    except ValueError as not_an_encoder:
        if not Path(path).is_file():
            raise
        try:
            payload = load_tagged(path, AGENT_FORMAT, "agent file")
        except ValueError:
            raise ValueError(f"'{path}' is neither a reprl encoder file nor an agent file or run checkpoint"
                             ) from not_an_encoder
    return Agent.from_payload(payload, device="cpu").encoder_payload()


def build_encoder(config, observation_space: spaces.Space, load_checkpoint: bool = True) -> Encoder:
    """The encoder ``config`` asks for; resolves ``config.encoder`` to a concrete name in place.

    With ``encoder_checkpoint`` the file's architecture and weights are used; with
    ``freeze_encoder`` its parameters stop requiring gradients.
    """
    payload = None
    if config.encoder_checkpoint and load_checkpoint:
        payload = read_encoder_source(config.encoder_checkpoint)
        if config.encoder not in ("auto", payload["name"]):
            raise ValueError(f"--encoder {config.encoder} does not match the checkpoint's encoder '{payload['name']}'")
        config.encoder, config.encoder_options = payload["name"], dict(payload["options"])
    if config.encoder == "auto":
        config.encoder = default_encoder_name(observation_space)
    encoder = make_encoder(config.encoder, observation_space, **config.encoder_options)
    if payload is not None:
        load_encoder_weights(encoder, payload, config.encoder_checkpoint)
    if config.freeze_encoder:
        encoder.requires_grad_(False)
    return encoder


class FeatureStandardizer(nn.Module):
    """Per-dimension standardisation of a frozen encoder's features, with statistics fitted once
    (``fit``) and kept, like the observation scaling of SB3's VecNormalize once frozen:
    ``clip((x - mean) / sqrt(var + 1e-8), -10, 10)``. Identity until fitted.

    Pre-trained features vary little around large per-dimension offsets (on Pong frames a BYOL
    Nature CNN's dimensions have a mean of 0.47 and a spread of 0.1 across states), which leaves a
    head trained by Adam at DQN's learning rate almost blind to what differs between states.
    """

    CLIP = 10.0

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def fit(self, features: Tensor) -> None:
        self.mean.copy_(features.mean(0))
        self.std.copy_((features.var(0, unbiased=False) + 1e-8).sqrt())
        self.fitted.fill_(True)

    def forward(self, features: Tensor) -> Tensor:
        return ((features - self.mean) / self.std).clamp(-self.CLIP, self.CLIP)


def orthogonal_init(module: nn.Module, gain: float = math.sqrt(2)) -> None:
    """Orthogonal weights and zero biases (Engstrom et al. 2020 found it matters for PPO)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            # drawn in the standard layout (``orthogonal_`` needs it), stored in the layer's own
            # (the CNN encoders keep channels-last conv weights)
            with torch.no_grad():
                layer.weight.copy_(nn.init.orthogonal_(torch.empty(layer.weight.shape), gain))
            nn.init.zeros_(layer.bias)


def linear(in_dim: int, out_dim: int, gain: float) -> nn.Linear:
    layer = Linear(in_dim, out_dim)
    orthogonal_init(layer, gain)
    return layer


class CategoricalHead(nn.Module):
    batch_shape_agnostic = True  # every leading dimension is batch (``agents.seed_stack``)

    def __init__(self, in_dim: int, action_space: spaces.Discrete):
        super().__init__()
        self.logits = linear(in_dim, int(action_space.n), gain=0.01)

    def forward(self, features: Tensor) -> Categorical:
        return self.distribution(*self.dist_inputs(features))

    def dist_inputs(self, features: Tensor) -> tuple[Tensor]:
        """The tensors the distribution is built from (what batched copies of the head return)."""
        return (self.logits(features),)

    @staticmethod
    def distribution(logits: Tensor) -> Categorical:
        return Categorical(logits=logits, validate_args=False)

    @staticmethod
    def sample(logits: Tensor) -> tuple[Tensor, Tensor]:
        """An action per row of ``logits`` ``[N, A]`` and its log-probability, drawn by the
        Gumbel-max trick, ``argmax_a(log pi(a) + g_a)`` with ``g_a = -log(e_a)``, ``e_a ~ Exp(1)``
        (Gumbel 1954; Maddison et al. 2014, "A* Sampling"): a draw from ``distribution(logits)`` in
        half the time of ``torch.multinomial`` on a few rows (acting with small networks is bound
        by per-op costs)."""
        log_probs = logits.log_softmax(-1)
        action = (log_probs - torch.empty_like(log_probs).exponential_().log_()).argmax(-1, keepdim=True)
        return action.squeeze(-1), log_probs.gather(-1, action).squeeze(-1)

    @staticmethod
    def log_prob(action: Tensor, logits: Tensor) -> Tensor:
        """``log pi(action)`` per row of ``logits`` ``[..., A]``."""
        return _chosen(logits.log_softmax(-1), action)

    @staticmethod
    def log_prob_and_entropy(action: Tensor, logits: Tensor) -> tuple[Tensor, Tensor]:
        """``log pi(action)`` and the entropy ``-sum_a pi(a) log pi(a)`` per row of ``logits``
        ``[..., A]``, as ``distribution(logits)`` gives them, in a third of its ops (the losses of
        small networks are bound by per-op costs, backward included)."""
        log_probs = logits.log_softmax(-1)
        return _chosen(log_probs, action), -(log_probs.exp() * log_probs).sum(-1)

    @staticmethod
    def greedy(logits: Tensor) -> Tensor:
        """The most probable action per row."""
        return logits.argmax(-1)


def _chosen(log_probs: Tensor, action: Tensor) -> Tensor:
    """``log_probs [..., A]`` at each row's ``action``."""
    return log_probs.gather(-1, action.long().unsqueeze(-1)).squeeze(-1)


class GaussianHead(nn.Module):
    """Diagonal Gaussian with a state-independent log-std (Schulman et al. 2017, PPO's MuJoCo policy)."""

    batch_shape_agnostic = True  # every leading dimension is batch; log_std broadcasts (``agents.seed_stack``)

    def __init__(self, in_dim: int, action_space: spaces.Box, log_std_init: float = 0.0):
        super().__init__()
        dim = int(action_space.shape[0])
        self.mean = linear(in_dim, dim, gain=0.01)
        self.log_std = nn.Parameter(torch.full((dim,), float(log_std_init)))

    def forward(self, features: Tensor) -> Independent:
        return self.distribution(*self.dist_inputs(features))

    def dist_inputs(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """The tensors the distribution is built from (what batched copies of the head return)."""
        mean = self.mean(features)
        return mean, self.log_std.expand_as(mean)

    @staticmethod
    def distribution(mean: Tensor, log_std: Tensor) -> Independent:
        return Independent(Normal(mean, log_std.exp(), validate_args=False), 1, validate_args=False)

    @staticmethod
    def sample(mean: Tensor, log_std: Tensor) -> tuple[Tensor, Tensor]:
        """A sampled action per row and its log-density."""
        dist = GaussianHead.distribution(mean, log_std)
        action = dist.sample()
        return action, dist.log_prob(action)

    @staticmethod
    def log_prob(action: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
        """The log-density of ``action``, per row."""
        return GaussianHead.distribution(mean, log_std).log_prob(action)

    @staticmethod
    def log_prob_and_entropy(action: Tensor, mean: Tensor, log_std: Tensor) -> tuple[Tensor, Tensor]:
        """The log-density of ``action`` and the entropy, per row."""
        dist = GaussianHead.distribution(mean, log_std)
        return dist.log_prob(action), dist.entropy()

    @staticmethod
    def greedy(mean: Tensor, log_std: Tensor) -> Tensor:
        """The most probable action per row: the mean."""
        return mean


def policy_head(in_dim: int, action_space: spaces.Space, log_std_init: float = 0.0) -> nn.Module:
    if isinstance(action_space, spaces.Discrete):
        return CategoricalHead(in_dim, action_space)
    if isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
        return GaussianHead(in_dim, action_space, log_std_init)
    raise ValueError(f"action space {action_space} is not supported (Discrete or 1-D Box)")


class BoxClipper:
    """Clips Gaussian samples into a Box at the env boundary; the buffer keeps the raw sample."""

    def __init__(self, action_space: spaces.Box, device: torch.device):
        self.low = torch.as_tensor(action_space.low, dtype=torch.float32, device=device)
        self.high = torch.as_tensor(action_space.high, dtype=torch.float32, device=device)

    def __call__(self, action: Tensor) -> Tensor:
        return torch.maximum(torch.minimum(action, self.high), self.low)


def mlp(in_dim: int, hidden_sizes: list[int] | tuple[int, ...], out_dim: int) -> nn.Sequential:
    """ReLU layers of ``hidden_sizes`` then a linear output: the heads of off-policy agents."""
    layers: list[nn.Module] = []
    for size in hidden_sizes:
        layers += [Linear(in_dim, int(size)), nn.ReLU()]
        in_dim = int(size)
    layers.append(Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class TanhGaussianHead(nn.Module):
    """Diagonal Gaussian with state-dependent mean and log-std, squashed into ``[-1, 1]^d`` by tanh
    (Haarnoja et al. 2018, "Soft Actor-Critic", appendix C).

    ``sample`` returns the squashed action and its log-density, corrected by the tanh Jacobian
    (eq. 21): ``log pi(a|s) = log N(u; mu, sigma) - sum_i log(1 - tanh(u_i)^2)``, with
    ``log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u))`` for numerical stability. Scaling the
    action to the env's bounds is left to the caller, so the density is that of ``[-1, 1]^d``.
    """

    LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # as in the authors' code and Stable-Baselines3
    batch_shape_agnostic = True  # (agents.seed_stack)

    def __init__(self, in_dim: int, action_dim: int):
        super().__init__()
        self.mean = Linear(in_dim, action_dim)
        self.log_std = Linear(in_dim, action_dim)

    def forward(self, features: Tensor) -> Normal:
        """The Gaussian before squashing."""
        log_std = self.log_std(features).clamp(self.LOG_STD_MIN, self.LOG_STD_MAX)
        return Normal(self.mean(features), log_std.exp(), validate_args=False)

    def sample(self, features: Tensor, noise: Tensor | None = None,
               deterministic: bool = False) -> tuple[Tensor, Tensor]:
        """``(tanh(u), log pi(tanh(u)|s))`` with ``u = mu + sigma * noise`` reparameterised (the mean
        when deterministic); ``noise``, standard normal draws, is drawn here when not given."""
        gaussian = self(features)
        if deterministic:
            u = gaussian.mean
        else:
            u = gaussian.rsample() if noise is None else gaussian.mean + gaussian.stddev * noise
        log_jacobian = 2.0 * (math.log(2.0) - u - nn.functional.softplus(-2.0 * u))
        return torch.tanh(u), (gaussian.log_prob(u) - log_jacobian).sum(-1)
