"""Custom autograd functions in the form each caller needs.

``torch.func``'s transforms (``torch.func.grad``, and so the traced gradient steps of
``agents.traced_graphs``) need a custom autograd function in the split form: ``forward`` without
``ctx``, then ``setup_context``. Plain autograd runs that form too, but its ``apply`` binds the
call's arguments through ``inspect.signature`` every time, which cost 20-30 us a call on the CPU
reprl is measured on: more than some of these functions' own arithmetic. ``ctx_first`` gives a
split-form function's form that takes ``ctx`` first, with the same forward and backward, and
``apply`` calls whichever form the caller's context needs.
"""
from __future__ import annotations

from typing import Any

import torch


def ctx_first(function: type[torch.autograd.Function]) -> type[torch.autograd.Function]:
    """The split-form ``function`` as a function whose ``forward`` takes ``ctx`` first, named
    ``<function>CtxFirst`` (its autograd nodes ``<function>CtxFirstBackward``)."""

    def forward(ctx: Any, *args: Any) -> Any:
        output = function.forward(*args)
        function.setup_context(ctx, args, output)
        return output

    return type(f"{function.__name__}CtxFirst", (torch.autograd.Function,),
                {"forward": staticmethod(forward), "backward": staticmethod(function.backward),
                 "__doc__": f"{function.__name__} in the form that takes ctx first (representation.function_forms)"})


def apply(function: type[torch.autograd.Function], ctx_first_form: type[torch.autograd.Function], *args: Any) -> Any:
    """``function.apply(*args)`` under ``torch.func``'s transforms, else its ``ctx_first_form``'s."""
    if torch._C._are_functorch_transforms_active():
        return function.apply(*args)
    return ctx_first_form.apply(*args)
