"""K networks of one architecture trained side by side as one: stacked parameters, one batched call.

Each parameter of the K copies is stored once as a ``[K, ...]`` tensor; a method of the
architecture is evaluated for all K copies at once with ``torch.func.vmap`` over
``torch.func.functional_call``, so K small networks cost about as many kernel launches as one.
The copies never mix: a loss that is a sum of per-copy losses gives each copy exactly its own
gradient, and elementwise optimisers (Adam) then step each copy exactly as they would alone.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap


class _Method(nn.Module):
    """Calls ``method`` of the wrapped network: ``functional_call`` can only call ``forward``."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, method: str, *args: Tensor) -> Any:
        return getattr(self.network, method)(*args)


class SeedStack(nn.Module):
    """``len(networks)`` copies of one architecture; ``call(method, *inputs)`` runs
    ``network.method`` on each copy's slice of ``inputs`` (leading dimension K)."""

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
        self._template = [_Method(copy.deepcopy(networks[0]).to("meta"))]
        self.num_copies = len(networks)

    def _tensors(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        params = {f"network.{name}": p for name, p in zip(self.param_names, self.stacked)}
        buffers = {f"network.{name}": getattr(self, f"stacked_buffer_{i}") for i, name in enumerate(self.buffer_names)}
        return params, buffers

    def call(self, method: str, *inputs: Tensor) -> Any:
        template = self._template[0]

        def one_copy(params: dict[str, Tensor], buffers: dict[str, Tensor], *args: Tensor) -> Any:
            return functional_call(template, (params, buffers), (method, *args))

        params, buffers = self._tensors()
        if self.num_copies > 1:
            return vmap(one_copy, in_dims=(0, 0, *[0] * len(inputs)), randomness="error")(params, buffers, *inputs)
        # A batch of one sends matrix-vector products (a value head's [B, 64] @ [64, 1]) to
        # routines that round differently from the batched ones every K >= 2 uses. A lone copy
        # therefore runs beside a detached twin, so that what a copy computes never depends on
        # how many copies run with it.
        outputs = vmap(one_copy, in_dims=(0, 0, *[0] * len(inputs)), randomness="error")(
            _with_twin(params), _with_twin(buffers), *(torch.cat([x, x]) for x in inputs))
        return _first_copy(outputs)

    def copy_into(self, index: int, network: nn.Module) -> nn.Module:
        """Loads copy ``index``'s parameters and buffers into ``network`` (same architecture)."""
        params, buffers = self._tensors()
        prefix = len("network.")
        state = {name[prefix:]: tensor[index].detach().clone() for name, tensor in {**params, **buffers}.items()}
        network.load_state_dict(state)
        return network

    def clip_grad_norm_(self, max_norm: float) -> Tensor:
        """Clips each copy's gradient to global L2 norm ``max_norm`` on its own (the per-copy
        version of ``nn.utils.clip_grad_norm_``); returns the K norms before clipping."""
        grads = [p.grad for p in self.stacked if p.grad is not None]
        if not grads:
            return torch.zeros(self.num_copies)
        norms = torch.stack([g.flatten(1).norm(dim=1) for g in grads], dim=1).norm(dim=1)
        scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(scale.view(-1, *[1] * (g.dim() - 1)))
        return norms


def _with_twin(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """Each ``[1, ...]`` tensor followed by a copy that gradients do not flow through."""
    return {name: torch.cat([t, t.detach()]) for name, t in tensors.items()}


def _first_copy(outputs: Any) -> Any:
    """Row 0 of every tensor in a (nested tuple of) outputs."""
    if isinstance(outputs, Tensor):
        return outputs[:1]
    return type(outputs)(_first_copy(output) for output in outputs)
