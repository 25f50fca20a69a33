"""The one sample type every buffer returns and every agent consumes."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor


@dataclass(frozen=True)
class Batch:
    """A batch of transitions or rollout steps; fields an agent does not use stay None.

    Shapes use B for the batch size: ``obs`` and ``next_obs`` are ``[B, *obs_shape]``,
    everything else is ``[B]`` or ``[B, *action_shape]``.

    ``discount`` is the factor in front of the bootstrap value, ``gamma ** k`` where ``k`` is the
    number of rewards summed into ``reward`` (1 for one-step replay), so every value-based target
    reads ``reward + discount * (1 - terminated) * next_value``; ``reward_steps`` is that ``k``
    (``next_obs`` lies ``k`` env steps after ``obs``), None where it is 1 throughout (rollouts).

    ``target``, where set, is that target already computed (``[B]``, or ``[B, atoms]`` for a
    distribution) for a larger batch this one was cut from: a DQN round's gradient steps share
    one target network, so their targets come from one forward pass.
    """

    obs: Tensor | None = None
    action: Tensor | None = None
    reward: Tensor | None = None
    next_obs: Tensor | None = None
    terminated: Tensor | None = None
    discount: Tensor | None = None
    reward_steps: Tensor | None = None
    weights: Tensor | None = None
    indices: Tensor | None = None
    log_prob: Tensor | None = None
    value: Tensor | None = None
    advantage: Tensor | None = None
    returns: Tensor | None = None
    next_action: Tensor | None = None
    target: Tensor | None = None

    def chunk(self, chunks: int, dim: int = 0) -> list["Batch"]:
        """Splits along the batch dimension ``dim`` into ``chunks`` equal batches (e.g. one per gradient step)."""
        parts = {f.name: getattr(self, f.name).chunk(chunks, dim) for f in fields(self)
                 if getattr(self, f.name) is not None}
        return [Batch(**{name: tensors[i] for name, tensors in parts.items()}) for i in range(chunks)]

    def map(self, function: Callable[[Tensor], Tensor]) -> "Batch":
        """``function`` applied to every field that is set."""
        return replace(self, **{f.name: function(getattr(self, f.name)) for f in fields(self)
                                if getattr(self, f.name) is not None})

    def take(self, rows: Tensor) -> "Batch":
        """The rows ``rows`` along the batch dimension: ``[B]`` indices into a batch of ``[M, ...]``
        fields, or ``[K, B]`` indices into one of ``[K, M, ...]`` fields (K groups, such as the seeds
        of ``agents.multi_seed``), row k of ``rows`` indexing group k."""
        if rows.dim() == 1:
            return self.map(lambda tensor: tensor.index_select(0, rows))
        groups = torch.arange(rows.shape[0], device=rows.device).unsqueeze(1)
        return self.map(lambda tensor: tensor[groups, rows])

    def to(self, device) -> "Batch":
        return self.map(lambda tensor: tensor.to(device))
