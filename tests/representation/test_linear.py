"""``Linear``: ``nn.Linear``'s values and gradients, with large products computed by oneDNN."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import representation.linear
from representation.linear import (FUSED_MAX_IN_FEATURES, FUSED_MAX_OUT_FEATURES, ONEDNN_AVAILABLE,
                                   ONEDNN_MIN_MACS_PER_THREAD, ONEDNN_MIN_MACS_PER_THREAD_AT_FULL_WIDTH,
                                   ONEDNN_MIN_MACS_PER_THREAD_IN_HALVES, ONEDNN_MIN_WEIGHT_FOR_ITS_GRADIENT,
                                   TURNED_GRADIENT_MIN_MACS, Linear, _onednn_product, affine, avx512_in_halves,
                                   goes_to_onednn)

pytestmark = pytest.mark.skipif(not ONEDNN_AVAILABLE, reason="this PyTorch build has no oneDNN")


def _layer(in_dim: int, out_dim: int, bias: bool = True) -> Linear:
    torch.manual_seed(0)
    return Linear(in_dim, out_dim, bias=bias)


def test_the_library_is_chosen_by_multiply_adds_per_thread():
    weight = torch.randn(256, 256)
    threads = torch.get_num_threads()
    rows_at_threshold = ONEDNN_MIN_MACS_PER_THREAD * threads // (256 * 256)
    assert goes_to_onednn(torch.randn(rows_at_threshold, 256), weight)
    assert not goes_to_onednn(torch.randn(rows_at_threshold - 1, 256), weight)
    assert not goes_to_onednn(torch.randn(rows_at_threshold, 256, dtype=torch.float64), weight.double())
    small = _layer(4, 64)
    x = torch.randn(8, 4)
    assert torch.equal(small(x), F.linear(x, small.weight, small.bias))  # small products stay with MKL


def _cpuinfo(vendor: str, family: int, flags: str) -> str:
    """The first processor's block of a ``/proc/cpuinfo``, then a second processor's."""
    block = f"processor\t: {{}}\nvendor_id\t: {vendor}\ncpu family\t: {family}\nmodel\t\t: 17\nflags\t\t: {flags}\n"
    return block.format(0) + "\n" + block.format(1)


def test_avx512_runs_in_halves_on_amds_family_25_with_avx512_alone():
    assert avx512_in_halves(_cpuinfo("AuthenticAMD", 25, "fpu sse avx2 fma avx512f avx512bw"))  # Zen 4
    assert not avx512_in_halves(_cpuinfo("AuthenticAMD", 25, "fpu sse avx2 fma"))  # Zen 3
    assert not avx512_in_halves(_cpuinfo("AuthenticAMD", 26, "fpu avx2 fma avx512f"))  # Zen 5: full width
    assert not avx512_in_halves(_cpuinfo("GenuineIntel", 6, "fpu avx2 fma avx512f"))
    assert not avx512_in_halves(_cpuinfo("AuthenticAMD", 25, "fpu avx512fp16"))  # a flag, not its prefix
    assert not avx512_in_halves("")


def test_the_threshold_is_the_one_for_this_cpus_avx512():
    assert ONEDNN_MIN_MACS_PER_THREAD == (ONEDNN_MIN_MACS_PER_THREAD_IN_HALVES if avx512_in_halves()
                                          else ONEDNN_MIN_MACS_PER_THREAD_AT_FULL_WIDTH)
    assert ONEDNN_MIN_MACS_PER_THREAD_IN_HALVES > ONEDNN_MIN_MACS_PER_THREAD_AT_FULL_WIDTH


def _as_if_avx512_in_halves(monkeypatch, in_halves: bool) -> int:
    """Routes products as on a CPU that runs AVX-512 in halves, or not; returns the threshold."""
    threshold = ONEDNN_MIN_MACS_PER_THREAD_IN_HALVES if in_halves else ONEDNN_MIN_MACS_PER_THREAD_AT_FULL_WIDTH
    monkeypatch.setattr(representation.linear, "AVX512_IN_HALVES", in_halves)
    monkeypatch.setattr(representation.linear, "ONEDNN_MIN_MACS_PER_THREAD", threshold)
    return threshold


@pytest.mark.parametrize("in_halves", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
def test_a_weights_gradient_comes_from_onednn_on_one_thread_and_for_large_weights_at_full_width(
        threads, in_halves, monkeypatch):
    """oneDNN splits a weight gradient by its output, too coarsely for a small weight on several
    threads: there MKL sums the rows; on one thread, and for large weights, oneDNN does, unless
    the CPU runs AVX-512 in halves, where MKL computes every weight gradient."""
    threshold = _as_if_avx512_in_halves(monkeypatch, in_halves)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for out_dim in (64, ONEDNN_MIN_WEIGHT_FOR_ITS_GRADIENT // 64):
            layer = _layer(64, out_dim)
            x = torch.randn(2 * threshold * threads // (64 * 64), 64)
            assert goes_to_onednn(x, layer.weight)
            upstream = torch.randn(x.shape[0], out_dim)
            (layer(x) * upstream).sum().backward()
            by_mkl = in_halves or (threads > 1 and out_dim == 64)
            turned = (x.t() @ upstream).t() if 64 < out_dim else upstream.t() @ x  # the short side as rows
            expected = turned if by_mkl else _onednn_product(upstream.t(), x.t(), None)
            assert torch.equal(layer.weight.grad, expected)
            torch.testing.assert_close(layer.weight.grad, upstream.t() @ x, rtol=1e-5, atol=1e-4)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("bias", [True, False])
def test_large_products_match_nn_linear_in_value_and_gradients(bias):
    layer = _layer(256, 192, bias)
    reference = nn.Linear(256, 192, bias=bias)
    reference.load_state_dict(layer.state_dict())  # the same parameters under the same names
    x = torch.randn(3, 200, 256).requires_grad_()  # leading dims are batch: 600 rows
    x_ref = x.detach().clone().requires_grad_()
    y, y_ref = layer(x), reference(x_ref)
    assert "_Affine" in type(y.grad_fn.next_functions[0][0]).__name__  # under the view back to [3, 200, 192]
    assert y.shape == y_ref.shape == (3, 200, 192)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    upstream = torch.randn_like(y)
    (y * upstream).sum().backward()
    (y_ref * upstream).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-5, atol=1e-5)
    for name, parameter in layer.named_parameters():
        torch.testing.assert_close(parameter.grad, dict(reference.named_parameters())[name].grad, rtol=1e-5, atol=1e-4)


def test_plain_autograd_and_torch_func_take_the_two_forms_of_the_function_with_the_same_bits():
    """Plain autograd runs the ctx-first form, whose ``apply`` binds no signature; ``torch.func``'s
    transforms (the traced gradient steps) the split form they need. The products are the same."""
    layer = _layer(256, 256)
    x = torch.randn(2 * ONEDNN_MIN_MACS_PER_THREAD * torch.get_num_threads() // (256 * 256), 256)
    upstream = torch.randn(x.shape[0], 256)
    y = layer(x)
    assert type(y.grad_fn.next_functions[0][0]).__name__ == "_AffineCtxFirstBackward"  # (under the view)
    (y * upstream).sum().backward()

    def loss(parameters):
        return (torch.func.functional_call(layer, parameters, (x,)) * upstream).sum()

    grads = torch.func.grad(loss)({name: parameter.detach() for name, parameter in layer.named_parameters()})
    for name, parameter in layer.named_parameters():
        assert torch.equal(parameter.grad, grads[name]), name


def test_a_first_layers_weight_gradient_takes_its_short_side_as_the_products_rows():
    """``F.linear``'s backward computes a weight's gradient as ``grad^T @ x``, which MKL computes
    slowly where the weight has fewer inputs than outputs: from enough rows such a layer computes
    ``(x^T @ grad)^T`` instead, the same sum up to rounding; fewer rows keep ``F.linear`` (its
    autograd node costs less than the function's Python there), as does a last layer."""
    for in_dim, out_dim, rows, turned in ((4, 64, TURNED_GRADIENT_MIN_MACS // (4 * 64), True),
                                          (4, 64, TURNED_GRADIENT_MIN_MACS // (4 * 64) - 1, False),
                                          (64, 4, TURNED_GRADIENT_MIN_MACS // (4 * 64), False)):
        layer = _layer(in_dim, out_dim)
        x, upstream = torch.randn(rows, in_dim), torch.randn(rows, out_dim)
        y = layer(x)
        nodes = [y.grad_fn, *[node for node, _ in y.grad_fn.next_functions]]  # (under a view)
        assert any("_Affine" in type(node).__name__ for node in nodes) == turned
        torch.testing.assert_close(y, F.linear(x, layer.weight, layer.bias), rtol=0, atol=0)
        (y * upstream).sum().backward()
        if turned:
            assert torch.equal(layer.weight.grad, (x.t() @ upstream).t())
        torch.testing.assert_close(layer.weight.grad, upstream.t() @ x, rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(layer.bias.grad, upstream.sum(0), rtol=1e-5, atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast's casts are F.linear's to make
        y = _layer(4, 64)(torch.randn(TURNED_GRADIENT_MIN_MACS // (4 * 64), 4))
    assert y.dtype == torch.bfloat16 and "Addmm" in type(y.grad_fn).__name__


def test_in_a_traced_gradient_every_first_layer_takes_the_short_side():
    """Under a compiler's trace the turn costs no Python: any first layer's weight gradient is the
    product ``x^T @ grad``, shaped ``[in, out]``, which the graph then transposes."""
    from torch.fx.experimental.proxy_tensor import make_fx

    x, weight, bias, upstream = torch.randn(8, 4), torch.randn(64, 4), torch.randn(64), torch.randn(8, 64)
    assert x.numel() * 64 < TURNED_GRADIENT_MIN_MACS  # eagerly this layer would keep F.linear

    def weight_gradient(x, weight, bias, upstream):
        return torch.func.grad(lambda w: (affine(x, w, bias) * upstream).sum())(weight)

    graph = make_fx(weight_gradient, tracing_mode="fake")(x, weight, bias, upstream)
    products = [node.meta["val"].shape for node in graph.graph.nodes
                if node.op == "call_function" and node.target is torch.ops.aten.mm.default]
    assert products == [(4, 64)]
    torch.testing.assert_close(weight_gradient(x, weight, bias, upstream), upstream.t() @ x, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("out_dim", [1, FUSED_MAX_OUT_FEATURES, FUSED_MAX_OUT_FEATURES + 1])
def test_in_a_traced_gradient_a_layer_with_few_outputs_is_arithmetic_not_a_product(out_dim):
    """Under a compiler's trace a head with at most ``FUSED_MAX_OUT_FEATURES`` outputs is row sums
    (no product in the graph, forward or backward; values and gradients those of ``F.linear``);
    one more output and it is a product again. Eagerly it is ``F.linear`` at any size."""
    from torch.fx.experimental.proxy_tensor import make_fx

    torch.manual_seed(0)
    x, weight, bias = torch.randn(32, 64), torch.randn(out_dim, 64), torch.randn(out_dim)
    upstream = torch.randn(32, out_dim)

    def gradients(x, weight, bias, upstream):
        return torch.func.grad(lambda *p: (affine(*p) * upstream).sum(), argnums=(0, 1, 2))(x, weight, bias)

    graph = make_fx(gradients, tracing_mode="fake")(x, weight, bias, upstream)
    products = [node for node in graph.graph.nodes if node.op == "call_function" and node.target in
                (torch.ops.aten.mm.default, torch.ops.aten.addmm.default, torch.ops.aten.bmm.default)]
    assert (not products) == (out_dim <= FUSED_MAX_OUT_FEATURES)
    expected = torch.func.grad(lambda *p: (F.linear(*p) * upstream).sum(), argnums=(0, 1, 2))(x, weight, bias)
    for got, want in zip(graph(x, weight, bias, upstream), expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    eager = affine(x.requires_grad_(), weight, bias)
    assert "Addmm" in type(eager.grad_fn).__name__


@pytest.mark.parametrize("in_dim", [1, FUSED_MAX_IN_FEATURES, FUSED_MAX_IN_FEATURES + 1])
def test_in_a_traced_step_a_layer_with_few_inputs_sums_them_against_its_weight_laid_out_by_input(in_dim):
    """Under a compiler's trace a layer with at most ``FUSED_MAX_IN_FEATURES`` inputs computes its
    forward as a sum over them, with its weight concatenated column by column into ``[in, out]``,
    and no forward product; its backward keeps the weight gradient's product. One more input and
    the forward is a product again. Values and gradients are ``F.linear``'s, with or without grad."""
    from torch.fx.experimental.proxy_tensor import make_fx

    torch.manual_seed(0)
    x, weight, bias, upstream = torch.randn(32, in_dim), torch.randn(64, in_dim), torch.randn(64), torch.randn(32, 64)

    def step(x, weight, bias, upstream):
        grads = torch.func.grad(lambda w, b: (affine(x, w, b).tanh() * upstream).sum(), argnums=(0, 1))(weight, bias)
        with torch.no_grad():
            return affine(x, weight, bias), *grads

    graph = make_fx(step, tracing_mode="fake")(x, weight, bias, upstream)
    ops = [node.target for node in graph.graph.nodes if node.op == "call_function"]
    summed = in_dim <= FUSED_MAX_IN_FEATURES
    assert (torch.ops.aten.addmm.default not in ops) == summed
    assert (torch.ops.aten.cat.default in ops) == summed
    assert torch.ops.aten.mm.default in ops  # the weight gradient, either way

    def expected(x, weight, bias, upstream):
        grads = torch.func.grad(lambda w, b: (F.linear(x, w, b).tanh() * upstream).sum(), argnums=(0, 1))(weight, bias)
        return F.linear(x, weight, bias), *grads

    for got, want in zip(graph(x, weight, bias, upstream), expected(x, weight, bias, upstream)):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_under_cpu_autocast_a_traced_head_casts_as_f_linear_does():
    from torch.fx.experimental.proxy_tensor import make_fx

    def head(x, weight, bias):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return affine(x, weight, bias)

    x, weight, bias = torch.randn(8, 64), torch.randn(FUSED_MAX_OUT_FEATURES, 64), torch.randn(FUSED_MAX_OUT_FEATURES)
    assert make_fx(head, tracing_mode="fake")(x, weight, bias)(x, weight, bias).dtype == torch.bfloat16


def test_torch_compile_traces_large_and_first_layers_whole_as_f_linear():
    """Under TorchDynamo (``torch.compile``: SAC's and TRPO's compiled losses) neither oneDNN's
    product, which inductor cannot lower for weights that are inputs, nor the thread count, which
    Dynamo cannot trace, may appear: the layers compile as one graph, values and gradients those of
    ``F.linear``."""
    torch._dynamo.reset()
    onednn_rows = ONEDNN_MIN_MACS_PER_THREAD * torch.get_num_threads() // (256 * 256)
    for in_dim, out_dim, rows in ((256, 256, onednn_rows), (4, 64, 2 * TURNED_GRADIENT_MIN_MACS // (4 * 64))):
        layer = _layer(in_dim, out_dim)
        assert goes_to_onednn(torch.randn(rows, in_dim), layer.weight) == (in_dim == 256)
        compiled = torch.compile(lambda x: (layer(x).tanh() ** 2).sum(), fullgraph=True)
        x = torch.randn(rows, in_dim)
        (grad,) = torch.autograd.grad(compiled(x), layer.weight)
        (expected,) = torch.autograd.grad((F.linear(x, layer.weight, layer.bias).tanh() ** 2).sum(), layer.weight)
        torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-4)


def test_second_derivatives_flow_through_the_backward():
    """TRPO's Fisher-vector products differentiate a gradient again: float32-close to the float64
    product, within a few times ``nn.Linear``'s own float32 error (about 2x over seeds 0-5, the
    two libraries summing in different orders)."""
    layer = _layer(256, 256)
    x = torch.randn(512, 256)
    vector = torch.randn(256, 256)

    def hessian_vector_product(net: nn.Module, dtype: torch.dtype) -> torch.Tensor:
        (grad_weight,) = torch.autograd.grad(net(x.to(dtype)).tanh().square().sum(), net.weight, create_graph=True)
        return torch.autograd.grad((grad_weight * vector.to(dtype)).sum(), net.weight)[0].double()

    references = {}
    for dtype in (torch.float32, torch.float64):
        references[dtype] = nn.Linear(256, 256, dtype=dtype)
        references[dtype].load_state_dict(layer.state_dict())
    exact = hessian_vector_product(references[torch.float64], torch.float64)
    mkl_error = (hessian_vector_product(references[torch.float32], torch.float32) - exact).abs().max()
    onednn_error = (hessian_vector_product(layer, torch.float32) - exact).abs().max()
    assert onednn_error < 4 * mkl_error, (onednn_error, mkl_error)
    assert onednn_error < 1e-5 * exact.abs().max()


def test_strided_inputs_and_the_no_grad_path():
    layer = _layer(256, 256)
    x = torch.randn(256, 512)[:, ::2]  # every other column: not contiguous
    with torch.no_grad():
        y = layer(x)
    assert y.grad_fn is None
    assert torch.equal(y, _onednn_product(x.contiguous(), layer.weight, layer.bias))
    torch.testing.assert_close(y, F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)
    assert torch.equal(affine(x, layer.weight, layer.bias), affine(x, layer.weight, layer.bias))  # run to run


def test_under_vmap_the_layer_is_f_linear_with_its_gradients():
    """``agents.seed_stack`` runs CNN copies under ``torch.func.vmap``, where the oneDNN op has
    neither a batching rule nor gradients: the layer must fall back to ``F.linear`` there."""
    weight = torch.randn(3, 512, 1024, requires_grad=True)
    x = torch.randn(3, 32, 1024)

    def vmapped(product):
        y = torch.func.vmap(lambda w, rows: product(rows, w))(weight, x)
        return y, torch.autograd.grad(y.square().sum(), weight)[0]

    assert all(torch.equal(a, b) for a, b in zip(vmapped(affine), vmapped(F.linear)))


def test_under_cpu_autocast_the_layer_casts_as_nn_linear_does():
    layer = _layer(256, 256)
    x = torch.randn(256, 256)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))
        assert layer(x).dtype == torch.bfloat16
