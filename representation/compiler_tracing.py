"""Whether code runs under a compiler's trace, where kernel choices are left to inductor."""
from __future__ import annotations

import torch
from torch import Tensor
from torch._subclasses.fake_tensor import is_fake


def traced_for_compiling(x: Tensor) -> bool:
    """Whether ``x`` is met while a compiler traces the code: TorchDynamo (``torch.compile``), or
    ``make_fx`` on fake tensors (``agents.traced_graphs``). Eager-only routes (oneDNN products,
    the tanh through the sigmoid) then step aside for the ops inductor compiles itself."""
    return torch.compiler.is_compiling() or is_fake(x)
