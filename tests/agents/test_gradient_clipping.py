"""``Agent.clip_gradients`` against ``torch.nn.utils.clip_grad_norm_``, for a plain optimiser and
for a flat one (``agents.flat_parameters``, as PPO's)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from agents import PPO


@pytest.mark.parametrize("flat", [False, True])
@pytest.mark.parametrize("max_norm", [1e-3, 1e3])  # clipped, and left as it is
def test_clip_gradients_equals_torch_clip_grad_norm(max_norm, flat):
    """Bit for bit on a plain optimiser's parameters; a flat optimiser's norm is its one flat
    gradient's, summed in another order, so there the scale may differ in its last bit."""
    agent = PPO.from_env("CartPole-v1", num_envs=2)
    params = list(agent.net.parameters())
    optimizer = agent.optimizer if flat else torch.optim.Adam(params)
    assert (getattr(optimizer, "flat_parameters", None) is not None) == flat
    generator = torch.Generator().manual_seed(0)
    for p in params:  # total norm ~0.01: the 1e-6 of the divisor counts
        gradient = torch.randn(p.shape, generator=generator) * 1e-4
        if flat:
            p.grad.copy_(gradient)  # the gradients are views of the flat one: written in place
        else:
            p.grad = gradient
    if not flat:
        params[0].grad = None  # a parameter without a gradient is left out
    clipped = params if flat else params[1:]
    reference = [nn.Parameter(p.detach().clone()) for p in clipped]
    for copy, p in zip(reference, clipped):
        copy.grad = p.grad.clone()
    unclipped = [p.grad.clone() for p in clipped]
    norm_before = torch.cat([g.flatten() for g in unclipped]).norm().item()

    agent.clip_gradients(optimizer, max_norm)
    nn.utils.clip_grad_norm_(reference, max_norm)

    if not flat:
        assert params[0].grad is None
    for p, copy in zip(clipped, reference):
        if flat:
            torch.testing.assert_close(p.grad, copy.grad, rtol=3e-7, atol=0)
        else:
            assert torch.equal(p.grad, copy.grad)
    total = torch.cat([p.grad.flatten() for p in clipped]).norm()
    if max_norm < 1:
        assert total.item() == pytest.approx(max_norm * norm_before / (norm_before + 1e-6), rel=1e-5)
    else:
        assert all(torch.equal(p.grad, g) for p, g in zip(clipped, unclipped))
