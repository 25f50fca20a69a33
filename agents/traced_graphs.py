"""Tensor functions compiled by inductor without TorchDynamo: ``--compile``'s calls on the CPU.

``torch.compile`` evaluates a compiled function's guards at every call: one check per Python value
the function read while it was traced. A whole gradient step reads the agent's module tree, its
parameter layout and functorch's state, about a thousand guards; on A2C CartPole's step they took
37 us of each call, a seventh of the step. ``TracedGraphs`` has no guards. It
traces its function with ``make_fx`` into a graph of ATen ops on the function's tensor inputs,
once per signature of those inputs (their nesting, shapes, strides and dtypes, and the values of
the non-tensor arguments), compiles the graph with inductor's ``compile_fx`` and, at each call,
looks the graph up by that signature and runs it.

What a graph bakes in is every Python value the function reads besides its arguments: an agent's
config, its modules' structure, class attributes. Those must not change once the function has
run (``agents.compilation``'s contract for every compiled method). A tensor the function reads
without getting it as an argument would be baked in as a constant, stale once training changes
it; tracing refuses such a function (``ValueError``), so parameters and buffers come in as
arguments (``ModuleCall``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import operator
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn
from torch.fx.experimental.proxy_tensor import make_fx
from torch.utils._pytree import tree_flatten, tree_unflatten

from replay import Batch
from representation.linear import ONEDNN_AVAILABLE

_TENSOR = object()  # where a tensor input stands in an argument's structure
_batch_fields = operator.attrgetter(*[field.name for field in dataclasses.fields(Batch)])


class TracedGraphs:
    """``fn`` (positional arguments: tensors, ``Batch``es, and tuples, lists and dicts of them, or
    hashable constants; outputs: any nesting of tensors) compiled by inductor with ``options``
    (``torch._inductor.config`` settings) once per signature of its arguments, called without
    TorchDynamo. Calls run without autograd recording (a gradient inside ``fn`` comes from
    ``torch.func.grad``).

    ``bound``: arguments passed ahead of each call's own, as ``functools.partial`` would, whose
    tensors must keep their shapes, strides and dtypes (an agent's parameters and buffers, which
    change in place): they are left out of the signatures, which each call computes."""

    #: Graphs compiled so far in this process, by all instances, and the seconds that took.
    compiled: int = 0
    compile_seconds: float = 0.0

    def __init__(self, fn: Callable[..., Any], options: dict[str, Any], bound: tuple = ()):
        self.fn, self.options = fn, options
        self.graphs: dict[tuple, tuple[Callable[..., list], Any]] = {}
        self.bound_tensors: list[Tensor] = []
        self.bound_structure = _flatten(bound, self.bound_tensors)

    def __call__(self, *args: Any) -> Any:
        tensors: list[Tensor] = []
        structure = _flatten(args, tensors)
        signature = (structure, tuple([(t.shape, t.stride(), t.dtype, t.device) for t in tensors]))
        entry = self.graphs.get(signature)
        if entry is None:
            entry = self.graphs[signature] = self._compile(structure, tensors)
        graph, output_spec = entry
        with torch.no_grad():
            return tree_unflatten(graph(*self.bound_tensors, *tensors), output_spec)

    def _compile(self, structure: tuple, tensors: list[Tensor]) -> tuple[Callable[..., list], Any]:
        from torch._inductor.compile_fx import compile_fx

        start, output_spec = time.perf_counter(), None
        tensors = [*self.bound_tensors, *tensors]
        split = len(self.bound_tensors)

        def flat_fn(*flat: Tensor) -> list[Tensor]:
            nonlocal output_spec
            bound = _unflatten(self.bound_structure, iter(flat[:split]))
            outputs, output_spec = tree_flatten(self.fn(*bound, *_unflatten(structure, iter(flat[split:]))))
            return outputs

        with torch.no_grad():
            try:  # on fake copies of the inputs, so a real tensor met on the way is one read from elsewhere
                graph_module = make_fx(flat_fn, tracing_mode="fake")(*tensors)
            except AssertionError as error:
                if "FakeTensor" not in str(error):
                    raise
                raise ValueError(f"{getattr(self.fn, '__qualname__', self.fn)} reads a tensor that is not among its "
                                 "arguments: a compiled graph would keep its value of today") from None
            with _onednn_products_as_calls():
                graph = compile_fx(graph_module, tensors, config_patches=self.options)
        TracedGraphs.compiled += 1
        TracedGraphs.compile_seconds += time.perf_counter() - start
        return graph, output_spec


@contextlib.contextmanager
def _onednn_products_as_calls() -> Iterator[None]:
    """While a graph compiles, inductor compiles oneDNN's linear product (``representation.linear``
    routes large products to it) as a call of the op. Its own lowering serves inductor's freezing
    pass, which packs constant weights, and refuses weights that are graph inputs, as the agents'
    parameters are here. So does the lowering of the product with a sum added (``.binary``),
    which inductor's pattern matcher makes of a product whose only use is a sum (the gradients
    that SAC's twin critics send to their shared encoder): that one becomes the product's call
    and the sum again."""
    from torch._inductor import lowering

    if not ONEDNN_AVAILABLE:  # (a PyTorch build without oneDNN: no such op, nothing routed to it)
        yield
        return
    product, with_sum = torch.ops.mkldnn._linear_pointwise.default, torch.ops.mkldnn._linear_pointwise.binary
    call = lowering.fallback_handler(product, add_to_fallback_set=False)
    sums = {"add": lowering.lowerings[torch.ops.aten.add.Tensor], "sub": lowering.lowerings[torch.ops.aten.sub.Tensor]}

    def product_then_sum(x, other, weight, bias, attr):
        return sums[attr](call(x, weight, bias, "none", [], ""), other)

    own = {op: lowering.lowerings.get(op) for op in (product, with_sum)}
    lowering.lowerings[product], lowering.lowerings[with_sum] = call, product_then_sum
    try:
        yield
    finally:
        for op, own_lowering in own.items():
            if own_lowering is None:
                del lowering.lowerings[op]
            else:
                lowering.lowerings[op] = own_lowering


class ModuleCall(nn.Module):
    """``method(module, *args)`` as a module's forward, for ``call_with_tensors``, which calls it
    with the module's parameters and buffers replaced by given tensors."""

    def __init__(self, module: nn.Module, method: Callable[..., Any]):
        super().__init__()
        self.module, self.method = module, method

    def forward(self, *args: Any) -> Any:
        return self.method(self.module, *args)


def call_with_tensors(module: nn.Module, tensors: dict[str, Tensor], args: tuple) -> Any:
    """``torch.func.functional_call(module, tensors, args)``, putting the module's own tensors back
    in the reverse order of their replacement. A submodule registered under two names (SAC's
    encoder is also its critics') is replaced under both; ``torch.func.functional_call`` puts
    them back in the same order as it replaced them, so the second name's "original", the
    replacement the first one put there, stays in the module for good."""
    with torch.nn.utils.stateless._reparametrize_module(module, tensors, tie_weights=True, stack_weights=True):
        return module(*args)


def _flatten(value: Any, tensors: list[Tensor]) -> Any:
    """``value``'s structure, with each tensor in it appended to ``tensors`` and marked ``_TENSOR``."""
    if isinstance(value, Tensor):
        tensors.append(value)
        return _TENSOR
    if value is None:
        return None
    if isinstance(value, Batch):
        return Batch, tuple([_flatten(field, tensors) for field in _batch_fields(value)])
    if isinstance(value, dict):
        return dict, tuple(value), tuple([_flatten(item, tensors) for item in value.values()])
    if isinstance(value, (tuple, list)):
        return type(value), tuple([_flatten(item, tensors) for item in value])
    return value


def _unflatten(structure: Any, tensors: Iterator[Tensor]) -> Any:
    """The value ``_flatten`` took ``structure`` from, with its tensors taken from ``tensors``."""
    if structure is _TENSOR:
        return next(tensors)
    if isinstance(structure, tuple) and structure and structure[0] is Batch:
        return Batch(*[_unflatten(item, tensors) for item in structure[1]])
    if isinstance(structure, tuple) and structure and structure[0] is dict:
        return dict(zip(structure[1], [_unflatten(item, tensors) for item in structure[2]]))
    if isinstance(structure, tuple) and structure and structure[0] in (tuple, list):
        return structure[0](_unflatten(item, tensors) for item in structure[1])
    return structure
