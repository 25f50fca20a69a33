"""``Agent.clip_gradients`` against ``torch.nn.utils.clip_grad_norm_``."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from agents import PPO


@pytest.mark.parametrize("max_norm", [1e-3, 1e3])  # clipped, and left as it is
def test_clip_gradients_equals_torch_clip_grad_norm_bit_for_bit(max_norm):
    agent = PPO.from_env("CartPole-v1", num_envs=2)
    params = [p for group in agent.optimizer.param_groups for p in group["params"]]
    generator = torch.Generator().manual_seed(0)
    for p in params[1:]:
        p.grad = torch.randn(p.shape, generator=generator) * 1e-4  # total norm ~0.01: the 1e-6 of the divisor counts
    params[0].grad = None  # a parameter without a gradient is left out
    reference = [nn.Parameter(p.detach().clone()) for p in params[1:]]
    for copy, p in zip(reference, params[1:]):
        copy.grad = p.grad.clone()
    unclipped = [p.grad.clone() for p in params[1:]]
    norm_before = torch.cat([g.flatten() for g in unclipped]).norm().item()

    agent.clip_gradients(agent.optimizer, max_norm)
    nn.utils.clip_grad_norm_(reference, max_norm)

    assert params[0].grad is None
    for p, copy in zip(params[1:], reference):
        assert torch.equal(p.grad, copy.grad)
    total = torch.cat([p.grad.flatten() for p in params[1:]]).norm()
    if max_norm < 1:
        assert total.item() == pytest.approx(max_norm * norm_before / (norm_before + 1e-6), rel=1e-5)
    else:
        assert all(torch.equal(p.grad, g) for p, g in zip(params[1:], unclipped))
