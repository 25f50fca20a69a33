"""The tanh through the sigmoid: float-precision tanh with tanh's gradient, used only where it pays."""
from __future__ import annotations

import torch
from gymnasium import spaces

from agents.seed_stack import SeedStack
from representation.encoders import MLPEncoder
from representation.encoders.activations import (SIGMOID_ROUTE_MIN_ELEMENTS, SIGMOID_ROUTE_MIN_ELEMENTS_NO_GRAD,
                                                 Tanh, tanh_from_sigmoid, under_compiler_trace)


def test_tanh_through_the_sigmoid_is_tanh_to_float_precision_with_tanh_gradients():
    x = torch.cat([torch.linspace(-12, 12, 200_001), torch.randn(10_000) * 1e-3]).requires_grad_()
    exact = torch.tanh(x.detach().double())
    y = Tanh(always_sigmoid=True)(x)
    error = (y.detach().double() - exact).abs()
    assert error.max() < 1.2e-7
    ulp = torch.finfo(torch.float32).eps * exact.abs()
    assert (error / ulp)[exact.abs() > 0.5].max() < 1.5
    with torch.no_grad():  # the acting path computes the same values
        assert torch.equal(Tanh(always_sigmoid=True)(x), y)
    y.backward(torch.ones_like(y))
    # tanh's own derivative at this y, to the rounding of its computation
    assert torch.allclose(x.grad, 1 - y.detach().square(), rtol=0, atol=torch.finfo(torch.float32).eps)


def test_small_activations_keep_torch_tanh_and_large_ones_take_the_sigmoid():
    generator = torch.Generator().manual_seed(0)

    def sample(numel: int) -> torch.Tensor:
        return torch.randn(numel, generator=generator) * 3

    tanh = Tanh()
    with torch.no_grad():
        small, large = sample(SIGMOID_ROUTE_MIN_ELEMENTS_NO_GRAD - 1), sample(SIGMOID_ROUTE_MIN_ELEMENTS_NO_GRAD)
        assert torch.equal(tanh(small), torch.tanh(small))
        assert torch.equal(tanh(large), tanh_from_sigmoid(large))
        assert torch.equal(Tanh(always_sigmoid=True)(small), tanh_from_sigmoid(small))
    # With gradients the autograd function's own cost moves the threshold up.
    middle = sample(SIGMOID_ROUTE_MIN_ELEMENTS - 1).requires_grad_()
    assert torch.equal(tanh(middle), torch.tanh(middle))
    large = sample(SIGMOID_ROUTE_MIN_ELEMENTS).requires_grad_()
    y = tanh(large)
    assert torch.equal(y, tanh_from_sigmoid(large.detach()))
    assert y.grad_fn is not None
    # The two differ only in the last bits, which is what makes the switch harmless.
    assert not torch.equal(torch.tanh(large), y)
    assert torch.allclose(torch.tanh(large), y, rtol=0, atol=1.2e-7)


def test_stacked_mlps_take_the_sigmoid_at_every_size():
    """K stacked copies must compute the same for any K, so their tanh never switches on size."""
    encoders = [MLPEncoder(spaces.Box(-1, 1, (4,))) for _ in range(2)]
    stack = SeedStack(encoders)
    assert stack.runs_directly
    tanhs = [module for module in stack._template[0].modules() if isinstance(module, Tanh)]
    assert len(tanhs) == 2 and all(module.always_sigmoid for module in tanhs)
    obs = torch.randn(2, 3, 4)
    with torch.no_grad():
        features = stack.call("forward", obs)
        for k, encoder in enumerate(encoders):
            pre_activation = encoder.net[2](tanh_from_sigmoid(encoder.net[0](obs[k])))
            assert torch.allclose(features[k], tanh_from_sigmoid(pre_activation), atol=1e-6)



def test_second_derivatives_through_the_sigmoid_match_tanh():
    """TRPO's Fisher-vector products differentiate the gradient again (double backward)."""
    x = (torch.randn(SIGMOID_ROUTE_MIN_ELEMENTS, generator=torch.Generator().manual_seed(1)) * 2).requires_grad_()
    direction = torch.randn(SIGMOID_ROUTE_MIN_ELEMENTS, generator=torch.Generator().manual_seed(2))

    def gradient_and_hessian_vector_product(tanh) -> tuple[torch.Tensor, torch.Tensor]:
        (gradient,) = torch.autograd.grad(tanh(x).pow(3).sum(), x, create_graph=True)
        (product,) = torch.autograd.grad((gradient * direction).sum(), x)
        return gradient.detach(), product

    gradient, product = gradient_and_hessian_vector_product(Tanh())
    expected_gradient, expected_product = gradient_and_hessian_vector_product(torch.tanh)
    torch.testing.assert_close(gradient, expected_gradient, rtol=0, atol=1e-6)
    torch.testing.assert_close(product, expected_product, rtol=0, atol=1e-5)


def test_torch_func_grad_differentiates_the_sigmoid_route_as_autograd_does():
    """The compiled whole gradient steps take their gradients with ``torch.func.grad``, through the
    function's split form; plain autograd through its ctx-first form (``function_forms``)."""
    x = torch.randn(SIGMOID_ROUTE_MIN_ELEMENTS, generator=torch.Generator().manual_seed(3)) * 2
    tanh = Tanh()
    leaf = x.clone().requires_grad_()
    y = tanh(leaf)
    assert type(y.grad_fn).__name__ == "_TanhFromSigmoidCtxFirstBackward"
    (expected,) = torch.autograd.grad(y.pow(3).sum(), leaf)
    assert torch.equal(torch.func.grad(lambda v: tanh(v).pow(3).sum())(x), expected)


def test_compiler_traces_take_the_sigmoid_route_at_every_size():
    """Inductor's fused sigmoid beats its tanh, so a traced graph never holds ``aten.tanh``."""
    from torch.fx.experimental.proxy_tensor import make_fx

    small = torch.randn(8, 64)
    assert small.numel() < SIGMOID_ROUTE_MIN_ELEMENTS_NO_GRAD and not under_compiler_trace()
    seen = []

    def traced(x: torch.Tensor) -> torch.Tensor:
        seen.append(under_compiler_trace())
        return Tanh()(x)

    graph = make_fx(traced, tracing_mode="fake")(small)
    operators = {str(node.target) for node in graph.graph.nodes if node.op == "call_function"}
    assert seen == [True]
    assert "aten.tanh.default" not in operators and "aten.sigmoid_.default" in operators
    assert torch.equal(graph(small), tanh_from_sigmoid(small))
    assert torch.compile(traced, backend="eager", fullgraph=True)(small).equal(tanh_from_sigmoid(small))
    assert seen == [True, True]
