"""Projection / prediction heads and the momentum (EMA) copy shared by the SSL methods."""
from __future__ import annotations

import copy

import torch
from torch import nn

from representation.linear import Linear


def mlp_head(in_dim: int, hidden_dim: int, out_dim: int, num_layers: int = 2,
             batch_norm: bool = True, output_norm: bool = False) -> nn.Sequential:
    """``Linear -> [BN] -> ReLU`` repeated ``num_layers - 1`` times, then ``Linear [-> BN]``.

    SimCLR and MoCo v2 use 2 layers without BN, BYOL 2 layers with BN, SimSiam a 3-layer
    projector with BN on its output too (``output_norm``).
    """
    if num_layers < 1 or min(in_dim, hidden_dim, out_dim) < 1:
        raise ValueError(f"a head needs >= 1 layer and positive widths, got {num_layers} layers, "
                         f"widths {in_dim}, {hidden_dim}, {out_dim}")
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(num_layers - 1):
        layers.append(Linear(width, hidden_dim, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm1d(hidden_dim))
        layers.append(nn.ReLU())
        width = hidden_dim
    layers.append(Linear(width, out_dim))
    if output_norm:
        layers.append(nn.BatchNorm1d(out_dim))
    return nn.Sequential(*layers)


def frozen_copy(module: nn.Module) -> nn.Module:
    """A copy that receives no gradient: the momentum / target network starts equal to ``module``."""
    target = copy.deepcopy(module)
    target.requires_grad_(False)
    return target


@torch.no_grad()
def momentum_update_(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """``target = momentum * target + (1 - momentum) * online`` for every parameter, in place.

    MoCo (He et al. 2020, eq. 2) and BYOL (Grill et al. 2020, Section 3.1) both move the target
    this way, as do the Polyak-averaged target critics of SAC and DQN with ``tau < 1`` (momentum
    ``1 - tau``). Buffers (BatchNorm statistics) are the target's own: its forward passes keep them.
    """
    targets = list(target.parameters())
    onlines = list(online.parameters())
    torch._foreach_mul_(targets, momentum)
    torch._foreach_add_(targets, onlines, alpha=1.0 - momentum)
