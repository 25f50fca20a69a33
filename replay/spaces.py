"""How a Gymnasium space is stored as a tensor: shape and dtype of one element."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch


def tensor_spec(space: gym.Space) -> tuple[tuple[int, ...], torch.dtype]:
    """Shape and torch dtype of one element of ``space`` (its own dtype: uint8 frames stay uint8)."""
    if space.shape is None or space.dtype is None:
        raise ValueError(f"cannot store elements of {space}: it has no fixed shape and dtype")
    return tuple(space.shape), torch.from_numpy(np.zeros(0, dtype=space.dtype)).dtype


def element_nbytes(space: gym.Space) -> int:
    shape, dtype = tensor_spec(space)
    return int(np.prod(shape, dtype=np.int64)) * torch.empty(0, dtype=dtype).element_size()
