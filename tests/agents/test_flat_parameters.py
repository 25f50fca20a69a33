"""One flat tensor for an optimiser's parameters: same values, same layouts, the same steps."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from agents.flat_parameters import FlatParameters, flat_optimizer


def network() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(4, 8, 3), nn.Flatten(), nn.Linear(8 * 4 * 4, 11), nn.ReLU(), nn.Linear(11, 3))
    return net.to(memory_format=torch.channels_last)


def gradients(net: nn.Module, generator: torch.Generator) -> list[torch.Tensor]:
    return [torch.randn(p.shape, generator=generator) for p in net.parameters()]


def test_parameters_become_views_of_one_tensor_with_their_values_and_layouts():
    net = network()
    before = [(p.detach().clone(), p.stride()) for p in net.parameters()]
    assert net[0].weight.is_contiguous(memory_format=torch.channels_last) and not net[0].weight.is_contiguous()
    flat = FlatParameters(net.parameters())
    assert flat.data.numel() == sum(p.numel() for p in net.parameters())
    for p, (values, strides) in zip(net.parameters(), before):
        assert torch.equal(p, values) and p.stride() == strides
        assert p.untyped_storage().data_ptr() == flat.data.untyped_storage().data_ptr()
        assert p.grad.untyped_storage().data_ptr() == flat.grad.untyped_storage().data_ptr()
    out = net(torch.randn(2, 4, 6, 6)).square().sum()
    out.backward()  # accumulates into the views, in place
    assert all(p.grad is g for p, g in zip(net.parameters(), flat.gradients))
    assert flat.grad.abs().sum() > 0


@pytest.mark.parametrize("optimizer_class, settings", [(torch.optim.Adam, {"lr": 1e-2, "fused": True}),
                                                       (torch.optim.RMSprop, {"lr": 1e-2, "foreach": True})])
def test_the_flat_optimizer_steps_every_parameter_as_the_optimizer_on_the_parameters(optimizer_class, settings):
    separate, joined = network(), network()
    reference = optimizer_class(separate.parameters(), **settings)
    optimizer = flat_optimizer(optimizer_class, joined.parameters(), **settings)
    generator = torch.Generator().manual_seed(1)
    for _ in range(5):
        for p, q, g in zip(separate.parameters(), joined.parameters(), gradients(separate, generator)):
            p.grad = torch.empty_like(p).copy_(g)  # in the parameter's layout, as backward gives it
            q.grad.copy_(g)
        reference.step()
        optimizer.step()
    for p, q in zip(separate.parameters(), joined.parameters()):
        # Elementwise, up to the last bit: fused Adam runs a tensor's last elements outside its
        # vector loop, and an 11-element bias is all such elements alone, none in the flat tensor.
        torch.testing.assert_close(q, p, rtol=2e-6, atol=1e-8)


def test_zero_grad_zeroes_and_takes_back_gradients_another_optimizer_dropped():
    net = network()
    flat = FlatParameters(net.parameters())
    flat.grad.fill_(1.0)
    torch.optim.SGD(net[4].parameters(), lr=0.1).zero_grad(set_to_none=True)
    assert net[4].weight.grad is None
    flat.zero_grad()
    assert torch.equal(flat.grad, torch.zeros_like(flat.grad))
    assert all(p.grad is g for p, g in zip(net.parameters(), flat.gradients))


def test_a_parameter_listed_twice_gets_one_slice():
    net = network()
    flat = FlatParameters([*net.parameters(), net[0].weight])
    assert flat.data.numel() == sum(p.numel() for p in net.parameters())
    assert len(flat.gradients) == len(list(net.parameters())) == 6


def test_parameters_of_several_dtypes_are_refused():
    with pytest.raises(ValueError, match="one device and dtype"):
        FlatParameters([nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2, dtype=torch.float64))])
