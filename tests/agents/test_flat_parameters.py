"""One flat tensor for an optimiser's parameters: same values, same layouts, the same steps."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from agents.flat_parameters import FlatAdam, FlatParameters, FlatRMSprop, flat_optimizer, pack_parameters
from representation.ssl import heads


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


@pytest.mark.parametrize("flat_class, reference_class, settings", [
    (FlatAdam, torch.optim.Adam, {"lr": 1e-2, "eps": 1e-5, "fused": True}),
    (FlatAdam, torch.optim.Adam, {"lr": 1e-2, "betas": (0.8, 0.99), "weight_decay": 0.1, "maximize": True,
                                  "fused": True}),
    (FlatAdam, torch.optim.Adam, {"lr": 1e-2, "eps": 1e-5, "fused": False, "foreach": True}),
    (FlatAdam, torch.optim.Adam, {"lr": 1e-2, "betas": (0.8, 0.99), "weight_decay": 0.1, "maximize": True,
                                  "fused": False, "foreach": True}),
    (FlatRMSprop, torch.optim.RMSprop, {"lr": 1e-2, "alpha": 0.99, "eps": 1e-5, "foreach": True}),
    (FlatRMSprop, torch.optim.RMSprop, {"lr": 1e-2, "alpha": 0.9, "eps": 1e-8, "foreach": False}),
])
def test_flat_optimizers_step_as_their_pytorch_class_bit_for_bit(flat_class, reference_class, settings):
    generator = torch.Generator().manual_seed(2)
    start = torch.randn(1_003, generator=generator)
    ours, theirs = nn.Parameter(start.clone()), nn.Parameter(start.clone())
    optimizer, reference = flat_class([ours], **settings), reference_class([theirs], **settings)
    for step in range(6):
        gradient = torch.randn(start.shape, generator=generator) * 10 ** (step % 3 - 1)
        ours.grad, theirs.grad = gradient.clone(), gradient.clone()
        for opt in (optimizer, reference):
            opt.param_groups[0]["lr"] = settings["lr"] * (1 - step / 10)  # annealed, as the agents do
        optimizer.step() if step % 2 else optimizer.step_directly()  # (the agents' loops step directly)
        reference.step()
        assert torch.equal(ours, theirs)
    mine, its = optimizer.state_dict(), reference.state_dict()
    assert mine["state"][0].keys() == its["state"][0].keys()
    assert all(torch.equal(mine["state"][0][k], its["state"][0][k]) for k in its["state"][0])
    fresh = flat_class([nn.Parameter(start.clone())], **settings)
    fresh.load_state_dict(its)  # a checkpoint of the PyTorch class resumes in the flat one
    assert torch.equal(fresh.state_dict()["state"][0]["step"], its["state"][0]["step"])


def test_stepping_directly_still_runs_the_step_hooks_registered():
    parameter = nn.Parameter(torch.ones(3))
    optimizer = FlatAdam([parameter], lr=0.1)
    calls = []
    optimizer.register_step_pre_hook(lambda opt, args, kwargs: calls.append("pre"))
    optimizer.register_step_post_hook(lambda opt, args, kwargs: calls.append("post"))
    handle = register_optimizer_step_post_hook(lambda opt, args, kwargs: calls.append("global post"))
    try:
        parameter.grad = torch.ones(3)
        optimizer.step_directly()
    finally:
        handle.remove()
    assert sorted(calls) == ["global post", "post", "pre"]
    assert torch.allclose(parameter.detach(), torch.full((3,), 0.9))  # Adam's first step: lr * sign(grad)


@pytest.mark.parametrize("flat_class, settings", [
    (FlatAdam, {"lr": 1e-2, "eps": 1e-5}), (FlatAdam, {"lr": 3e-3, "betas": (0.8, 0.99), "eps": 1e-8}),
    (FlatRMSprop, {"lr": 1e-2, "alpha": 0.99, "eps": 1e-5})])
def test_the_traced_update_for_compiled_steps_steps_as_the_optimizer(flat_class, settings):
    """``traced_update`` (``--compile``'s whole gradient steps) computes the optimiser's step with
    the step count, learning rate and gradient scale as tensors, to float rounding, and counts the
    steps alike."""
    generator = torch.Generator().manual_seed(3)
    start = torch.randn(1_003, generator=generator)
    ours, theirs = nn.Parameter(start.clone()), nn.Parameter(start.clone())
    traced, reference = flat_class([ours], **settings), flat_class([theirs], **settings)
    _, parameter, state = traced.started_state()
    for step in range(6):
        gradient = torch.randn(start.shape, generator=generator) * 10 ** (step % 3 - 1)
        scale = None if step % 2 else torch.tensor(0.25 + step)  # (clipping's factor, where it clips)
        lr = settings["lr"] * (1 - step / 10)
        reference.param_groups[0]["lr"] = lr
        theirs.grad = gradient.clone() if scale is None else gradient * scale
        reference.step()
        with torch.no_grad():
            flat_class.traced_update(parameter, gradient, scale, state, torch.tensor(lr), *traced.traced_settings())
        torch.testing.assert_close(ours.detach(), theirs.detach(), rtol=1e-5, atol=1e-6)  # (params ~1)
    for key, value in reference.state_dict()["state"][0].items():
        torch.testing.assert_close(state[key], value, rtol=1e-6, atol=1e-9, msg=key)
    if flat_class is FlatAdam:  # settings it does not trace: the step stays eager
        assert FlatAdam([nn.Parameter(start.clone())], weight_decay=0.1).traced_settings() is None


@pytest.mark.parametrize("flat_class, settings", [(FlatAdam, {"amsgrad": True}), (FlatRMSprop, {"momentum": 0.9}),
                                                  (FlatRMSprop, {"centered": True}), (FlatRMSprop, {"maximize": True})])
def test_flat_optimizers_refuse_the_variants_they_do_not_implement(flat_class, settings):
    with pytest.raises(ValueError, match="takes none of"):
        flat_class([nn.Parameter(torch.zeros(3))], **settings)


def test_flat_optimizers_refuse_more_than_one_parameter():
    with pytest.raises(ValueError, match="one flat parameter"):
        FlatAdam([nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(2))])


def test_unfused_flat_adam_steps_an_element_alike_wherever_it_lies_in_the_tensor():
    """What stacking K seeds in one flat tensor needs: a seed's elements step as they would in a
    tensor of another length (here, as slices of 7 elements, all outside any vector loop)."""
    generator = torch.Generator().manual_seed(3)
    start = torch.randn(1_001, generator=generator)
    whole = nn.Parameter(start.clone())
    pieces = [nn.Parameter(piece.clone()) for piece in start.split(7)]
    optimizers = [FlatAdam([p], lr=1e-2, fused=False) for p in (whole, *pieces)]
    for _ in range(4):
        gradient = torch.randn(start.shape, generator=generator)
        whole.grad = gradient.clone()
        for piece, piece_gradient in zip(pieces, gradient.split(7)):
            piece.grad = piece_gradient.clone()
        for optimizer in optimizers:
            optimizer.step()
    assert torch.equal(whole.detach(), torch.cat([p.detach() for p in pieces]))


@pytest.mark.parametrize("flat_class, reference_class, settings", [
    (FlatAdam, torch.optim.Adam, {"lr": 1e-2, "fused": False, "foreach": True}),
    (FlatRMSprop, torch.optim.RMSprop, {"lr": 1e-2, "foreach": True})])
def test_a_flat_optimizer_resumes_from_the_state_of_its_pytorch_class_on_separate_parameters(
        flat_class, reference_class, settings):
    """A checkpoint from before the parameters were flat: each one's moments go to its slice
    (the conv weight's channels-last layout included), and stepping goes on as it would have."""
    separate, joined = network(), network()
    reference = reference_class(separate.parameters(), **settings)
    generator = torch.Generator().manual_seed(4)
    steps = [gradients(separate, generator) for _ in range(5)]
    for grads in steps[:3]:
        for p, g in zip(separate.parameters(), grads):
            p.grad = torch.empty_like(p).copy_(g)
        reference.step()
    with torch.no_grad():
        for p, q in zip(separate.parameters(), joined.parameters()):
            q.copy_(p)
    optimizer = flat_optimizer(flat_class, joined.parameters(), **settings)
    optimizer.load_state_dict(reference.state_dict())
    for grads in steps[3:]:
        for p, q, g in zip(separate.parameters(), joined.parameters(), grads):
            p.grad = torch.empty_like(p).copy_(g)
            q.grad.copy_(g)
        reference.step()
        optimizer.step()
    assert all(torch.equal(p, q) for p, q in zip(separate.parameters(), joined.parameters()))


def test_a_flat_optimizer_refuses_state_of_other_shapes():
    separate, joined = network(), network()
    for p in separate.parameters():
        p.grad = torch.ones_like(p)
    other = torch.optim.Adam(list(separate.parameters())[::-1], lr=1e-2)  # the same tensors, another order
    other.step()
    optimizer = flat_optimizer(FlatAdam, joined.parameters(), lr=1e-2)
    with pytest.raises(ValueError, match="for a parameter of shape"):
        optimizer.load_state_dict(other.state_dict())


def test_a_packed_target_takes_the_same_polyak_step_as_one_tensor_at_a_time():
    online, target = network(), network()
    with torch.no_grad():
        for p in target.parameters():
            p.mul_(-0.5).add_(0.25)  # a target apart from the online network
    loose = copy.deepcopy(target)  # its parameters stay separate tensors
    flat_optimizer(FlatAdam, online.parameters(), lr=1e-3)
    packed = pack_parameters(list(target.parameters()))
    assert all(p.untyped_storage().data_ptr() == packed.untyped_storage().data_ptr() for p in target.parameters())
    assert [p.stride() for p in target.parameters()] == [p.stride() for p in loose.parameters()]
    assert heads._dense_span(list(target.parameters())) is not None  # the one-pass path is taken
    heads.momentum_update_(target, online, 0.995)
    heads.momentum_update_(loose, online, 0.995)  # per tensor: loose parameters tile nothing
    assert heads._dense_span(list(loose.parameters())) is None
    for packed_p, loose_p, online_p in zip(target.parameters(), loose.parameters(), online.parameters()):
        assert torch.equal(packed_p, loose_p) and not torch.equal(packed_p, online_p)


def test_parameters_tile_a_span_only_in_order_and_without_gaps():
    data = torch.arange(10.0)
    a, b, c = data[0:4].view(2, 2), data[4:7], data[7:10]
    assert torch.equal(heads._dense_span([a, b, c]), data)
    assert torch.equal(heads._dense_span([b, c]), data[4:])
    assert heads._dense_span([a, c]) is None  # a gap
    assert heads._dense_span([b, a]) is None  # out of order
    assert heads._dense_span([a, torch.arange(3.0)]) is None  # another storage
    assert heads._dense_span([data[0:6].view(2, 3).t()]) is None  # not dense in that order
