"""K networks of one architecture trained side by side as one: stacked parameters, one batched call.

Each parameter of the K copies is stored once as a ``[K, ...]`` tensor, and a method of the
architecture is evaluated for all K copies at once on a storage-less template of the network
whose tensors are swapped for the stacked ones, so K small networks cost about as many kernel
launches as one. Networks built only of linear layers (NoisyNet's included), elementwise
activations and modules that declare ``batch_shape_agnostic`` (they treat every leading dimension
as batch, and a parameter of their own enters only by broadcasting against the features) run
directly on ``[K, B, ...]`` inputs, each linear layer as one batched matrix product and each tanh
through the sigmoid at every size (``representation.encoders.activations``: the same to float
precision, faster on the CPU for K copies' large activations, and independent of K); any other
network runs under ``torch.func.vmap``, whose per-op batching costs several times the op itself
on small networks (a K=16 CartPole actor-critic: 440 us per acting call under vmap).
The copies never mix: a loss that is a sum of per-copy losses gives each copy exactly its own
gradient, and elementwise optimisers (Adam) then step each copy exactly as they would alone.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import chain
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import stack_module_state, vmap

from agents.q_heads import NoisyLinear
from representation.encoders.activations import Tanh
from representation.linear import affine, goes_to_onednn


class SeedStack(nn.Module):
    """``len(networks)`` copies of one architecture; ``call(method, *inputs, **options)`` runs
    ``network.method`` on each copy's slice of ``inputs`` (leading dimension K), with the same
    non-tensor ``options`` for all."""

    def __init__(self, networks: list[nn.Module]):
        super().__init__()
        if not networks:
            raise ValueError("SeedStack needs at least one network")
        params, buffers = stack_module_state(networks)
        trainable = {name for name, p in networks[0].named_parameters() if p.requires_grad}
        self.param_names, self.buffer_names = list(params), list(buffers)
        self.stacked = nn.ParameterList(nn.Parameter(params[name].detach().clone(), requires_grad=name in trainable)
                                        for name in self.param_names)
        for i, name in enumerate(self.buffer_names):
            self.register_buffer(f"stacked_buffer_{i}", buffers[name].clone())
        # The architecture without storage; a list keeps it out of parameters() and state_dict().
        template = copy.deepcopy(networks[0]).to("meta")
        self.runs_directly = _runs_directly(template)
        if self.runs_directly:
            _stack_layers(template)
        self._template = [template]
        self._slots = _tensor_slots(template, self.param_names + self.buffer_names)
        self.num_copies = len(networks)

    def _tensors(self) -> list[Tensor]:
        """The stacked parameters, then buffers, in the order of ``param_names + buffer_names``."""
        # (the ParameterList's own iteration costs 4 us a tensor, a tenth of a small acting step)
        return [*self.stacked._parameters.values(), *self.stacked_buffers()]

    def stacked_buffers(self) -> list[Tensor]:
        """The stacked ``[K, ...]`` buffers, in the order of ``buffer_names``."""
        return [getattr(self, f"stacked_buffer_{i}") for i in range(len(self.buffer_names))]

    def call(self, method: str, *inputs: Tensor, **options: Any) -> Any:
        tensors = self._tensors()
        if self.num_copies > 1:
            return self._call_copies(method, tensors, inputs, options)
        # A batch of one sends matrix-vector products (a value head's [B, 64] @ [64, 1]) to
        # routines that round differently from the batched ones every K >= 2 uses. A lone copy
        # therefore runs beside a detached twin, so that what a copy computes never depends on
        # how many copies run with it.
        twinned = [torch.cat([t, t.detach()]) for t in tensors]
        return _first_copy(self._call_copies(method, twinned, [torch.cat([x, x]) for x in inputs], options))

    def _call_copies(self, method: str, tensors: list[Tensor], inputs: list[Tensor] | tuple[Tensor, ...],
                     options: dict[str, Any]) -> Any:
        template, slots = self._template[0], self._slots
        if self.runs_directly:
            with _swapped_in(slots, tensors, copies_broadcast=True):
                return getattr(template, method)(*inputs, **options)

        def one_copy(copy_tensors: list[Tensor], *args: Tensor) -> Any:
            with _swapped_in(slots, copy_tensors):
                return getattr(template, method)(*args, **options)

        return vmap(one_copy, randomness="error")(tensors, *inputs)

    def copy_into(self, index: int, network: nn.Module) -> nn.Module:
        """Loads copy ``index``'s parameters and buffers into ``network`` (same architecture)."""
        names = self.param_names + self.buffer_names
        network.load_state_dict({name: t[index].detach().clone() for name, t in zip(names, self._tensors())})
        return network

    def clip_grad_norm_(self, max_norm: float) -> Tensor:
        """``clip_grad_norm_per_copy_`` of this stack's parameters."""
        return clip_grad_norm_per_copy_(self.stacked, max_norm, self.num_copies)


def clip_grad_norm_per_copy_(parameters: Iterable[Tensor], max_norm: float, num_copies: int) -> Tensor:
    """Clips each copy's gradient (slice k of every stacked ``[K, ...]`` parameter) to global L2
    norm ``max_norm`` on its own (the per-copy version of ``nn.utils.clip_grad_norm_``); returns
    the K norms before clipping."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(num_copies)
    norms = torch.stack([g.flatten(1).norm(dim=1) for g in grads], dim=1).norm(dim=1)
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.view(-1, *[1] * (g.dim() - 1)))
    return norms


# Parameter-free modules that act elementwise, so any leading dimensions pass through them.
ELEMENTWISE_MODULES = (nn.Identity, nn.Tanh, Tanh, nn.ReLU, nn.ELU, nn.GELU, nn.Sigmoid)


def _runs_directly(network: nn.Module) -> bool:
    """Whether K stacked copies of ``network`` can run on ``[K, B, ...]`` inputs without vmap."""
    return all(isinstance(module, (nn.Linear, NoisyLinear, nn.Sequential, nn.ModuleList, *ELEMENTWISE_MODULES))
               or getattr(module, "batch_shape_agnostic", False) for module in network.modules())


class _StackedAffine(torch.autograd.Function):
    """``bias + rows @ weight^T`` for K copies (``rows [K, B, in]``, ``weight [K, out, in]``,
    ``bias [K, out]``), with a backward that computes the weight's gradient as
    ``grad^T @ rows``, in the weight's own layout. Autograd's own backward of the product gives
    the gradient of ``weight^T`` and hands on its transpose, which is then copied into the
    parameter's layout: for K=16 DQN networks of 256 units, 1.2 ms of an 8 ms gradient step."""

    @staticmethod
    def forward(ctx, rows: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        ctx.save_for_backward(rows, weight)
        return torch.baddbmm(bias.unsqueeze(1), rows, weight.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        rows, weight = ctx.saved_tensors
        grad = grad.contiguous()
        grad_rows = torch.bmm(grad, weight) if ctx.needs_input_grad[0] else None
        grad_weight = None
        if ctx.needs_input_grad[1]:
            # The product is several times faster when its output's rows are the longer side
            # ([K, 4, 64] rather than [K, 64, 4] for a 4-input layer: 23 against 97 us for K=16
            # and 256 rows), so a layer with fewer inputs than outputs computes the transpose.
            if rows.shape[2] < grad.shape[2]:
                grad_weight = torch.bmm(rows.transpose(1, 2), grad).transpose(1, 2)
            else:
                grad_weight = torch.bmm(grad.transpose(1, 2), rows)
        grad_bias = grad.sum(1) if ctx.needs_input_grad[2] else None
        return grad_rows, grad_weight, grad_bias


class StackedLinear(nn.Module):
    """K linear layers with ``weight [K, out, in]`` and ``bias [K, out]``, applied to
    ``[K, *batch, in]``: row k through layer k, as one batched matrix product (``_StackedAffine``
    where gradients are needed).

    The input is made contiguous first: the envs' observations come in other layouts, and a lone
    copy's twin is a fresh tensor, so this gives the product the same layout, and the same
    rounding, however many copies run."""

    def __init__(self, layer: nn.Linear):
        super().__init__()
        self.weight = layer.weight
        self.bias = layer.bias

    def forward(self, x: Tensor) -> Tensor:
        return _stacked_affine(x, self.weight, self.bias)


def _stacked_affine(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``x [K, *batch, in]`` through K affine maps ``weight [K, out, in]``, ``bias [K, out]``;
    copy by copy where each copy's product is large enough for oneDNN (``affine``: there twice
    as fast on the CPU as the batched product, which MKL computes)."""
    rows = x.reshape(x.shape[0], -1, x.shape[-1]).contiguous()
    if goes_to_onednn(rows[0], weight[0]):
        # unbind, not indexing: the backward of K indexings would fill a zero [K, ...] gradient
        # for each copy and add the K of them (for K=16 DQN networks, 4 of a 5 ms backward)
        biases = [None] * len(rows) if bias is None else bias.unbind(0)
        out = torch.stack([affine(x_k, w_k, b_k) for x_k, w_k, b_k in zip(rows.unbind(0), weight.unbind(0), biases)])
    elif bias is None:
        out = torch.bmm(rows, weight.transpose(1, 2))
    elif torch.is_grad_enabled() and (weight.requires_grad or bias.requires_grad or rows.requires_grad):
        out = _StackedAffine.apply(rows, weight, bias)
    else:
        out = torch.baddbmm(bias.unsqueeze(1), rows, weight.transpose(1, 2))
    return out.view(*x.shape[:-1], out.shape[-1])


class StackedNoisyLinear(nn.Module):
    """K ``NoisyLinear`` layers (Fortunato et al. 2018, eq. 10-11) with ``[K, ...]`` tensors: each
    copy's noisy weight and bias formed as ``NoisyLinear.forward`` forms them, then applied as
    one batched matrix product like ``StackedLinear``."""

    takes_noise = True

    def __init__(self, layer: NoisyLinear):
        super().__init__()
        self.weight_mu, self.bias_mu = layer.weight_mu, layer.bias_mu
        self.weight_sigma, self.bias_sigma = layer.weight_sigma, layer.bias_sigma
        self.register_buffer("eps_in", layer.eps_in)
        self.register_buffer("eps_out", layer.eps_out)

    def forward(self, x: Tensor, noise: bool = True) -> Tensor:
        if not noise:
            return _stacked_affine(x, self.weight_mu, self.bias_mu)
        weight = self.weight_mu + self.weight_sigma * (self.eps_out.unsqueeze(2) * self.eps_in.unsqueeze(1))
        return _stacked_affine(x, weight, self.bias_mu + self.bias_sigma * self.eps_out)


def _stack_layers(network: nn.Module) -> None:
    """Replaces every ``nn.Linear`` of ``network`` by a ``StackedLinear`` holding its tensors, every
    ``NoisyLinear`` by a ``StackedNoisyLinear`` and every tanh by one always through the sigmoid."""
    for module in list(network.modules()):
        for name, child in module.named_children():
            if isinstance(child, nn.Linear):
                setattr(module, name, StackedLinear(child))
            elif isinstance(child, NoisyLinear):
                setattr(module, name, StackedNoisyLinear(child))
            elif isinstance(child, (nn.Tanh, Tanh)):
                setattr(module, name, Tanh(always_sigmoid=True))


def _tensor_slots(network: nn.Module, names: list[str]) -> list[tuple[dict[str, Any], str, int, bool]]:
    """Where each parameter and buffer of ``network`` lives: ``(its module's _parameters or
    _buffers, attribute, index into names, whether it is a plain tensor of its module rather
    than a ``StackedLinear``'s)``; a tensor held twice (tied) gets both places."""
    index_of = {}
    for name, tensor in chain(network.named_parameters(), network.named_buffers()):
        index_of[id(tensor)] = names.index(name)
    slots = []
    for module in network.modules():
        for store in (module._parameters, module._buffers):
            slots += [(store, attr, index_of[id(t)], not isinstance(module, (StackedLinear, StackedNoisyLinear)))
                      for attr, t in store.items() if t is not None]
    return slots


@contextmanager
def _swapped_in(slots: list[tuple[dict[str, Any], str, int, bool]], tensors: list[Tensor],
                copies_broadcast: bool = False) -> Iterator[None]:
    """The template holds ``tensors`` in place of its storage-less ones while the block runs
    (``torch.func.functional_call``'s job without its per-call bookkeeping). With
    ``copies_broadcast`` the tensors are all K copies, ``[K, ...]``: a ``StackedLinear`` takes
    them as they are, any other module's as ``[K, 1, ...]``, which broadcasts copy k against
    row k of a ``[K, B, ...]`` batch."""
    held = [store[attr] for store, attr, _, _ in slots]
    for store, attr, i, plain in slots:
        store[attr] = tensors[i].unsqueeze(1) if copies_broadcast and plain else tensors[i]
    try:
        yield
    finally:
        for (store, attr, _, _), tensor in zip(slots, held):
            store[attr] = tensor


def _first_copy(outputs: Any) -> Any:
    """Row 0 of every tensor in a (nested tuple of) outputs."""
    if isinstance(outputs, Tensor):
        return outputs[:1]
    return type(outputs)(_first_copy(output) for output in outputs)
