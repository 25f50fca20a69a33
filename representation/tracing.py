"""Whether code runs under a compiler's trace, where some ops take the form a compiled graph prefers."""
from __future__ import annotations

import torch

_FAKE_MODE = torch._C._TorchDispatchModeKey.FAKE


def under_compiler_trace() -> bool:
    """True under ``torch.compile`` and under a fake-tensor trace (``make_fx``, which
    ``agents.traced_graphs`` runs for inductor). The fake mode is read off the dispatch-mode
    stack in 0.1 us (``is_fake`` on the tensor takes 1 us, too much for every small layer call)."""
    return torch.compiler.is_compiling() or torch._C._get_dispatch_mode(_FAKE_MODE) is not None
