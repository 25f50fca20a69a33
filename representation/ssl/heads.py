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
    A caller that steps the same pair often lists it once (``momentum_pair``) for ``momentum_step_``.
    """
    momentum_step_(*momentum_pair(target, online), momentum)


def momentum_pair(target: nn.Module, online: nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The tensors ``momentum_step_`` moves: every parameter of each, or where both tile one tensor
    alike (a target packed like its online network's flat parameters, ``agents.flat_parameters``)
    those two tensors, which it then steps in one pass each, element by element the same arithmetic."""
    targets, onlines = list(target.parameters()), list(online.parameters())
    target_span, online_span = _dense_span(targets), _dense_span(onlines)
    if (target_span is not None and online_span is not None and len(targets) == len(onlines)
            and all(t.shape == o.shape and t.stride() == o.stride() for t, o in zip(targets, onlines))):
        return [target_span], [online_span]
    return targets, onlines


@torch.no_grad()
def momentum_step_(targets: list[torch.Tensor], onlines: list[torch.Tensor], momentum: float) -> None:
    """``momentum_update_`` of the tensors of a ``momentum_pair``."""
    torch._foreach_mul_(targets, momentum)
    torch._foreach_add_(targets, onlines, alpha=1.0 - momentum)


def _dense_span(parameters: list[torch.Tensor]) -> torch.Tensor | None:
    """The 1-D tensor that ``parameters`` tile in order without gaps (views of one storage, each
    dense and starting where the one before ends), or None where they do not."""
    if not parameters:
        return None
    first = parameters[0]
    storage, start = first.untyped_storage().data_ptr(), first.storage_offset()
    end = start
    for p in parameters:
        dense = p.is_contiguous() or p.is_contiguous(memory_format=torch.channels_last)
        if p.untyped_storage().data_ptr() != storage or p.storage_offset() != end or not dense:
            return None
        end += p.numel()
    return first.detach().as_strided((end - start,), (1,), start)
