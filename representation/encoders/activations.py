"""tanh computed through the sigmoid on the CPU, where this PyTorch build's ``torch.tanh`` is slow.

On the 2-core CPU reprl is measured on, ``torch.tanh`` takes about 1 ns an element on two threads
and ``torch.sigmoid`` 0.13, so on large activations (1,024 envs' acting batch, 2,048-sample
minibatches, K seeds' stacked batches) tanh is the biggest single cost of a small MLP. Below a
size the extra calls cost more than they save, and small batches keep ``torch.tanh``. Compiled
code takes the sigmoid at every size: inductor fuses its steps into one loop, 2.8x as fast as its
own vectorised tanh.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from representation.function_forms import apply, ctx_first
from representation.tracing import under_compiler_trace

# Elements from which the sigmoid route pays on the CPU, timed on [B, 64] activations on two
# threads: forward and backward 54 against 57 us at 32,768 elements and 105 against 171 at
# 131,072 (the autograd function costs some 10 us a call); without gradients 16 against 21 us
# at 16,384 and 58 against 139 at 131,072, even at 8,192.
SIGMOID_ROUTE_MIN_ELEMENTS = 32_768
SIGMOID_ROUTE_MIN_ELEMENTS_NO_GRAD = 16_384


def tanh_from_sigmoid(x: Tensor) -> Tensor:
    """``tanh(x) = sign(x) (1 - 2 sigmoid(-2|x|))``: within 1.2e-7 of ``torch.tanh``, and within
    1.4 units in the last place where ``|tanh(x)| > 0.5``, so that ``1 - tanh(x)^2``, the
    gradient, stays as accurate as tanh's own towards saturation."""
    return torch.abs(x).mul_(-2.0).sigmoid_().mul_(-2.0).add_(1.0).copysign_(x)


class _TanhFromSigmoid(torch.autograd.Function):
    # (forward and setup_context apart: the form torch.func.grad, and so the traced gradient steps
    # of agents.traced_graphs, can differentiate)
    @staticmethod
    def forward(x: Tensor) -> Tensor:
        return tanh_from_sigmoid(x)

    @staticmethod
    def setup_context(ctx, inputs: tuple[Tensor], output: Tensor) -> None:
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)  # grad * (1 - y^2), as torch.tanh's own


_TanhFromSigmoidCtxFirst = ctx_first(_TanhFromSigmoid)  # for plain autograd (representation.function_forms)


class Tanh(nn.Module):
    """``nn.Tanh``, through the sigmoid on the CPU for activations of at least the module's
    threshold (``always_sigmoid``: at every size, so that a value never depends on its batch's
    size, as ``agents.seed_stack`` needs); ``torch.tanh`` on other devices."""

    def __init__(self, always_sigmoid: bool = False):
        super().__init__()
        self.always_sigmoid = always_sigmoid

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu":
            return torch.tanh(x)
        with_grad = torch.is_grad_enabled() and x.requires_grad
        threshold = SIGMOID_ROUTE_MIN_ELEMENTS if with_grad else SIGMOID_ROUTE_MIN_ELEMENTS_NO_GRAD
        # Compiled code takes the sigmoid route at every size: inductor's fused sigmoid is 2.8x
        # its vectorised tanh (27 against 75 us on [2048, 64]).
        if not self.always_sigmoid and x.numel() < threshold and not under_compiler_trace():
            return torch.tanh(x)
        return apply(_TanhFromSigmoid, _TanhFromSigmoidCtxFirst, x) if with_grad else tanh_from_sigmoid(x)

    def extra_repr(self) -> str:
        return "always_sigmoid=True" if self.always_sigmoid else ""
