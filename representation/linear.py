"""``nn.Linear`` whose large matrix products run through oneDNN on the CPU.

PyTorch's CPU ``addmm`` calls MKL's ``sgemm``, which on AMD's EPYCs runs without AVX-512 although
the CPU has it (``MKL_VERBOSE`` names the code path "Intel(R) Architecture processors", the
generic one): on one thread about 108 GFLOP/s on 256 x 256 x 256 against oneDNN's 235 on a CPU
that runs AVX-512 at full width. oneDNN, which PyTorch already ships for its CPU convolutions,
picks its kernels by the instructions the CPU has. It costs some 10 us more a call, so below
``ONEDNN_MIN_MACS_PER_THREAD`` multiply-adds a thread the product stays with MKL (timed on
[B, in] x [in, out] products, B = 32-2,048, in and out 4-3,136: on one thread oneDNN took
0.52-0.79x MKL's time at 2.1 M multiply-adds and 0.45-0.52x from 16 M; on two threads 0.86x
at 4.2 M and 0.53x at 16.8 M).

A CPU that runs AVX-512 as two 256-bit halves (AMD's Zen 4, ``AVX512_IN_HALVES``) runs oneDNN's
AVX-512 kernels at about half that rate (104 GFLOP/s), and MKL's generic path no slower than
elsewhere. There the forward product ties with MKL's up to about 4 M multiply-adds a thread and
is the faster from 8 M (0.79-0.94x MKL's time on one and two threads), so the threshold is
``ONEDNN_MIN_MACS_PER_THREAD_IN_HALVES``; and MKL computes every weight gradient, which
oneDNN took 1.04-1.19x MKL's time for on one thread and 1.1-3.3x on two (DQN CartPole's three
64 x 256 x 256 products of a gradient step, one thread: 90, 88 and 91 us through MKL against 96,
95 and 108; compiled DQN CartPole runs went from 1,485-1,568 to 1,570-1,728 steps/s).

The weight's gradient, ``grad^T @ rows``, sums over the batch's rows. oneDNN splits that product
by its ``[out, in]`` output, so on several threads a small output leaves threads idle where MKL
splits the rows: on two threads, a 64 x 64 weight's gradient over 2,048 rows took 147 us in
oneDNN against 102 in MKL (8,192 rows: 520 against 444; 64 x 256 over 2,048: 483 against 402),
a 256 x 256 one's over 2,048 rows 1,142 against 1,340, and on one thread oneDNN was the faster
for every shape timed. So with several threads a weight below ``ONEDNN_MIN_WEIGHT_FOR_ITS_GRADIENT``
elements has its gradient computed by MKL (and every weight where AVX-512 runs in halves).

MKL's speed on that gradient depends on which side of the weight it takes as its product's rows.
With the longer side, as ``F.linear``'s own backward does for a layer with fewer inputs than
outputs (``grad^T @ x``), a 64 x 4 first layer's gradient over 2,048 rows took 178 us on one
thread against 31 for ``(x^T @ grad)^T``, and DQN CartPole's 256 x 4 one over 64 rows 27
against 9; a 2 x 64 last layer's went the other way, 23 against 157. Over weights of 1-256 by
1-256 and 64-2,048 rows, on one and two threads, the shorter side as rows was up to 7x the faster
and never more than 1.2x the slower. So ``_weight_gradient`` has MKL compute it that way round,
and layers with fewer inputs than outputs take this module's autograd function instead of
``F.linear``: always in compiled code, eagerly from ``TURNED_GRADIENT_MIN_MACS`` multiply-adds
(below it the function's Python, some 40 us a forward and backward, costs more than it saves).

The result is the same product up to rounding (the two sum in different orders). Which library
computes a product, and which way round, depends only on its shape, its device and dtype, the
thread count, the CPU's model and whether it is compiled, so a seeded run computes the same
numbers each time it runs on one machine. ``torch.func.grad`` differentiates the autograd
function, and ``agents.traced_graphs`` compiles it into its graphs; TorchDynamo, ``vmap`` and CPU
autocast see ``F.linear`` (inductor then chooses its own kernels), but for the layers of the next
paragraph.

In compiled code on the CPU (``agents.traced_graphs``' graphs and TorchDynamo's alike), a layer
with at most ``FUSED_MAX_OUT_FEATURES`` outputs (a value head, a two-action policy or Q-head, a
one-dimensional Gaussian's mean) is no library product at all: each output is a row's
multiply-and-sum, ``(x * weight_o).sum(-1)``, which inductor fuses into the kernels around it
(the log-softmax and loss after a policy head, the tanh's gradient before it), and its backward
is such arithmetic too. A library call costs a product's full setup for a few
columns: on two threads, the forward of a 1,024 x 64 x 2 head took 45 us as a call and 30 fused,
a 17,408 x 64 x 1 critic head 122 against 51 (its forward alone, as in PPO's per-rollout values),
and PPO's 2,048-sample gradient steps on torch-native CartPole ran 10-12% faster (docs/performance.md).
From three outputs, or with a backward over many more rows (17,408 x 64 x 2 on two threads: 556 us
against 858), the library's product is the faster.

Likewise a layer with at most ``FUSED_MAX_IN_FEATURES`` inputs (a classic-control observation's
first layer) is, in compiled code on the CPU, a sum over its inputs, ``b + sum_i x_i * w[:, i]``,
fused into the activation after it; in a traced step its backward stays the products above
(under TorchDynamo, autograd differentiates the sums). A vector of outputs reads its weights
contiguously only with the weight laid out ``[in, out]``, so the layer first copies it that way
(``_by_input``: a concatenation of the columns, which inductor writes as a buffer of its own; with
the ``[out, in]`` weight read four floats apart, inductor gathered it lane by lane and the layer
ran several times slower than the library's product). Compiled on two threads, a 2,048 x 4 -> 64
layer and its activation took 60 us against 118 for the product and a separate activation kernel.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from representation.function_forms import apply, ctx_first
from representation.tracing import under_compiler_trace


def avx512_in_halves(cpuinfo: str | None = None) -> bool:
    """Whether the CPU (``cpuinfo``: the text of Linux's ``/proc/cpuinfo``, read when None) runs
    AVX-512 instructions as two 256-bit halves: an AMD CPU of family 25 (Zen 3 and Zen 4) that
    has AVX-512, which only Zen 4 does. False where the report cannot be read (not Linux)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as report:
                cpuinfo = report.read()
        except OSError:
            return False
    fields = dict(line.split(":", 1) for line in cpuinfo.split("\n\n")[0].splitlines() if ":" in line)
    fields = {name.strip(): value.strip() for name, value in fields.items()}
    return (fields.get("vendor_id") == "AuthenticAMD" and fields.get("cpu family") == "25"
            and "avx512f" in fields.get("flags", "").split())


AVX512_IN_HALVES = avx512_in_halves()
ONEDNN_MIN_MACS_PER_THREAD_AT_FULL_WIDTH = 2 ** 21
ONEDNN_MIN_MACS_PER_THREAD_IN_HALVES = 2 ** 23
ONEDNN_MIN_MACS_PER_THREAD = (ONEDNN_MIN_MACS_PER_THREAD_IN_HALVES if AVX512_IN_HALVES
                              else ONEDNN_MIN_MACS_PER_THREAD_AT_FULL_WIDTH)
ONEDNN_MIN_WEIGHT_FOR_ITS_GRADIENT = 2 ** 16  # elements, on several threads
TURNED_GRADIENT_MIN_MACS = 2 ** 19
FUSED_MAX_OUT_FEATURES = 2
FUSED_MAX_IN_FEATURES = 4
ONEDNN_AVAILABLE = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def _onednn_product(rows: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``rows @ weight^T + bias`` by oneDNN (``rows [N, in]``, ``weight [out, in]``; any strides)."""
    return torch.ops.mkldnn._linear_pointwise(rows, weight, bias, "none", [], "")


def goes_to_onednn(x: Tensor, weight: Tensor) -> bool:
    """Whether ``x [..., in] @ weight^T [in, out]`` runs through oneDNN (see the module's note).
    Under TorchDynamo the answer is no: inductor lowers oneDNN's product only for frozen weights
    (``agents.traced_graphs``, which traces on fake tensors, compiles it as a call of the op).
    That comes first, as TorchDynamo cannot trace the thread count (it would break the graph and
    run this test eagerly, where it says yes); then the size, which ends the test for the small
    products of every env step."""
    return (not torch.compiler.is_compiling()
            and x.numel() * weight.shape[0] >= ONEDNN_MIN_MACS_PER_THREAD * torch.get_num_threads()
            and ONEDNN_AVAILABLE and x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu") and not _inside_vmap(x, weight))


def _inside_vmap(*tensors: Tensor) -> bool:
    """Whether ``torch.func.vmap`` (as ``agents.seed_stack`` runs CNNs) batches any of ``tensors``
    at any level of ``torch.func``'s wrappers: the oneDNN op has no batching rule. (Under
    ``torch.func.grad`` the autograd function below differentiates it.)"""
    functorch = torch._C._functorch
    for tensor in tensors:
        while functorch.is_functorch_wrapped_tensor(tensor):
            if functorch.is_batchedtensor(tensor):
                return True
            tensor = functorch.get_unwrapped(tensor)
    return False


class _Affine(torch.autograd.Function):
    """``rows @ weight^T + bias`` by oneDNN (``onednn``) or ``F.linear``, with a backward whose
    products are routed as ``affine`` and ``_weight_gradient`` route them; the backward is built
    of differentiable ops, so double backprop (TRPO's Fisher-vector products) works through it.
    (forward and setup_context apart: the form ``torch.func.grad``, and so the traced gradient
    steps of ``agents.traced_graphs``, can differentiate)"""

    @staticmethod
    def forward(rows: Tensor, weight: Tensor, bias: Tensor | None, onednn: bool) -> Tensor:
        return _onednn_product(rows, weight, bias) if onednn else _plain_product(rows, weight, bias)

    @staticmethod
    def setup_context(ctx, inputs: tuple[Tensor, Tensor, Tensor | None, bool], output: Tensor) -> None:
        rows, weight, bias, _ = inputs
        ctx.save_for_backward(rows, weight)
        ctx.has_bias = bias is not None

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None, None]:
        rows, weight = ctx.saved_tensors
        grad_rows = affine(grad, weight.t()) if ctx.needs_input_grad[0] else None  # grad @ weight
        grad_weight = _weight_gradient(grad, rows) if ctx.needs_input_grad[1] else None
        grad_bias = grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_rows, grad_weight, grad_bias, None


_AffineCtxFirst = ctx_first(_Affine)  # for plain autograd (representation.function_forms)


def _weight_gradient(grad: Tensor, rows: Tensor) -> Tensor:
    """``grad^T @ rows`` (``[out, in]``): by oneDNN only where it is the faster, else by MKL with
    the weight's shorter side as its product's rows (module note)."""
    out_features, in_features = grad.shape[1], rows.shape[1]
    small_on_threads = (torch.get_num_threads() > 1
                        and out_features * in_features < ONEDNN_MIN_WEIGHT_FOR_ITS_GRADIENT)
    if not (small_on_threads or AVX512_IN_HALVES) and goes_to_onednn(grad.t(), rows.t()):
        return affine(grad.t(), rows.t())
    return (rows.t() @ grad).t() if in_features < out_features else grad.t() @ rows


def _turns_weight_gradient(x: Tensor, weight: Tensor) -> bool:
    """Whether ``F.linear``'s backward, whose weight gradient is MKL's ``grad^T @ x`` with the
    long side as its rows, gives way to ``_Affine``'s (module note): on the CPU, for a weight with
    fewer inputs than outputs (a first layer), in a fake-tensor trace (``agents.traced_graphs``)
    or with enough rows to repay the autograd function's Python; not under TorchDynamo, which
    leaves the products to inductor, nor under autocast, whose casts ``F.linear`` handles."""
    out_features, in_features = weight.shape
    return (in_features < out_features and x.device.type == "cpu" and not torch.compiler.is_compiling()
            and (x.numel() * out_features >= TURNED_GRADIENT_MIN_MACS or under_compiler_trace())
            and not torch.is_autocast_enabled("cpu") and not _inside_vmap(x, weight))


def affine(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear(x, weight, bias)`` (``x [..., in]``), through oneDNN where it is faster, its
    weight's gradient computed the faster way round; a few outputs in compiled code as row sums."""
    if (weight.shape[0] <= FUSED_MAX_OUT_FEATURES and x.device.type == "cpu" and under_compiler_trace()
            and not torch.is_autocast_enabled("cpu")):  # (autocast casts for F.linear)
        return _row_sums(x, weight, bias)
    onednn = goes_to_onednn(x, weight)
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad
                                              or (bias is not None and bias.requires_grad))
    if not (onednn or (needs_grad and weight.requires_grad and _turns_weight_gradient(x, weight))):
        return _plain_product(x, weight, bias)
    rows = x.reshape(-1, x.shape[-1])
    out = (apply(_Affine, _AffineCtxFirst, rows, weight, bias, onednn) if needs_grad
           else _onednn_product(rows, weight, bias))
    return out.view(*x.shape[:-1], weight.shape[0])


def _plain_product(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``F.linear(x, weight, bias)``, or in compiled code on the CPU, for a layer with at most
    ``FUSED_MAX_IN_FEATURES`` inputs, a sum over them (module note)."""
    if (weight.shape[1] <= FUSED_MAX_IN_FEATURES and x.device.type == "cpu" and under_compiler_trace()
            and not torch.is_autocast_enabled("cpu")):
        by_input = _by_input(weight)
        out = x[..., 0, None] * by_input[0]
        for i in range(1, weight.shape[1]):
            out = out + x[..., i, None] * by_input[i]
        return out if bias is None else out + bias
    return F.linear(x, weight, bias)


def _by_input(weight: Tensor) -> Tensor:
    """``weight [out, in]`` copied as ``[in, out]``, contiguous: a concatenation of its columns,
    which inductor writes as a buffer rather than reading ``weight.t()`` through its strides."""
    return torch.cat(weight.unbind(1)).view(weight.shape[1], weight.shape[0])


def _row_sums(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``x @ weight^T + bias`` as each output's multiply-and-sum over the inputs (module note)."""
    out = (x.unsqueeze(-2) * weight).sum(-1)
    return out if bias is None else out + bias


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters, same state dict) computed by ``affine``."""

    def forward(self, x: Tensor) -> Tensor:
        return affine(x, self.weight, self.bias)
