"""``--compile``: inductor's compilation of the tensor functions an agent runs every update and step.

An agent names two kinds of methods, each a pure tensor function: its inputs are tensors (a
``Batch``, a scalar held in a 0-d tensor) and the agent's modules, its outputs tensors, and it
reads no Python state that changes during training (a float that changes, such as an annealed
clipping range or epsilon, comes in as a tensor: a Python float would recompile at every value).

- ``compiled_methods``, the losses of every update, compiled by ``torch.compile``. Inductor fuses
  the loss's element-wise ops and the backward pass runs AOTAutograd's compiled backward;
  optimiser steps, random draws (NoisyNet noise) and buffer updates stay eager.
- ``acting_methods``, the network calls of every environment step, compiled by ``torch.compile``
  only where the mode captures them as CUDA graphs.

Agents that say ``compiles_whole_steps`` (PPO, A2C, DQN, SAC) compile more on the CPU, where a small
network's step is bound by per-call costs, and without TorchDynamo (``agents.traced_graphs``),
whose guards cost about as much as the arithmetic of such a step; so do PPO and DQN on a GPU
(``compiles_whole_steps_on_gpu``), where the graphs' Triton kernels replace a few hundred launches:

- ``Agent.whole_gradient_step``: the loss, its gradient by ``torch.func.grad`` with respect to the
  parameters (views of one flat tensor, ``agents.flat_parameters``) joined as one flat gradient,
  the clipping and the flat optimiser's step as one graph, which leaves no autograd engine, no
  optimiser bookkeeping and no Python between the ops of a step;
- the network calls and draws of every step or rollout (``Agent.trace_methods``): the on-policy
  agents' ``sampled_action`` and ``rollout_state_values`` (the critic on a rollout's
  observations) and, where evaluations recur, their evaluations' ``greedy_action``; DQN's
  ``epsilon_greedy`` and ``round_targets`` (a training round's targets); SAC's ``policy_action``
  and ``policy_entropy`` (the sample its temperature is tuned by). A graph
  holds one draw at most: inductor orders independent ops as it likes, and PyTorch 2.11 drew
  two of them in the other order, so a method that needs two takes them as arguments.

Whatever the agent, the ``Runner`` compiles a torch-native env's step the same way, on any
device, all of it but the reset draws (``compile_env_step``); the evaluation envs' step too
where evaluations recur.

``compile_methods`` replaces each with its compiled version on the instance: the agent calls the
same name either way, and the ``state_dict`` (checkpoints, ``save/load``, resume) is the same with
and without compilation. Which kernels compute a call never depends on the calls before it:

- A method is compiled at its first call and once more for each other batch size it meets (a
  run meets few: PPO's last minibatch may be smaller, acting sees the training and evaluation
  env counts), each with static shapes.
- An agent whose loss batches change size at every update (``loss_batch_size_varies``:
  REINFORCE's whole episodes) compiles its losses once, for a symbolic batch size.

``torch.compile``'s default, automatic dynamic shapes, compiles the first size statically and the
second with a symbolic size, then serves every later call, of either size, from that graph: a
run resumed in a fresh process would run its first updates on the static graph where the
unbroken run had moved on to the symbolic one. With that default, on the CPU of an H200 machine
(PyTorch 2.11, 16 threads), a compiled PPO run resumed from its checkpoint ended with other
weights than the unbroken run.

``compile_mode`` ``auto`` is ``reduce-overhead`` on CUDA (compiled graphs replayed as CUDA graphs,
which removes the per-kernel launch cost that dominates small networks) and ``default``
elsewhere (inductor's generated C++). Random ops inside a compiled method are left to ATen
(inductor's ``fallback_random``), so a seed draws the same numbers with and without ``--compile``.

On the CPU inductor's ``cpp_wrapper`` calls a graph's kernels from generated C++ instead of
Python: PPO CartPole's whole gradient step (256 samples, two threads) took 268-274 us against
307-312 without it. Calling the graphs without TorchDynamo took A2C CartPole's update (its whole
rollout of 40 samples, one thread) from about 405 to 360 us of each rollout, and acting from 56
to 34 us a step; measured figures are in ``docs/performance.md``.

Compiling PPO's, A2C's or DQN's CartPole graphs took 11.2-12.8 s here with an empty inductor
cache, and every run compiles its graphs again: with a warm cache 0.85-1.1 s (``compile_seconds``),
mostly tracing and loading the cached libraries, against 2.1-2.5 s in the same hour before the
vector instruction sets were taken from the CPU's report (``inductor_options``). Hence
``--compile`` is off by default: on the CPU it pays for runs long enough to earn its compile time
back.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch.utils._pytree import tree_map_only

from agents.traced_graphs import TracedGraphs

if TYPE_CHECKING:
    from agents.base import Agent
    from replay import ReplayBuffer

COMPILE_MODES = ("auto", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def resolve_compile_mode(mode: str, device: torch.device) -> str:
    """The ``torch.compile`` mode that ``mode`` (one of ``COMPILE_MODES``) stands for on ``device``."""
    if mode == "auto":
        return "reduce-overhead" if device.type == "cuda" else "default"
    return mode


def uses_cuda_graphs(mode: str, device: torch.device) -> bool:
    """Whether inductor replays graphs compiled in ``mode`` on ``device`` as CUDA graphs."""
    return device.type == "cuda" and bool(torch._inductor.list_mode_options(mode).get("triton.cudagraphs"))


def inductor_options(mode: str, device: torch.device) -> dict[str, Any]:
    """The inductor settings of graphs compiled in ``mode`` for ``device``."""
    options = {**torch._inductor.list_mode_options(mode), "fallback_random": True}
    if device.type == "cpu":
        # The graph's kernels called from generated C++ rather than Python.
        options["cpp_wrapper"] = True
        # The vector instruction sets the CPU reports (the ones ATen dispatches its own kernels to)
        # taken as they are: otherwise a process's first graph probes each set by compiling a test
        # library and loading it in a child process, 1.1-1.3 s of every run's compiling here.
        options["cpp.vec_isa_ok"] = True
    return options


def traced_graph_options(mode: str, device: torch.device) -> dict[str, Any]:
    """The inductor settings of ``TracedGraphs`` compiled in ``mode`` for ``device``: those of
    ``inductor_options`` without CUDA graphs, which inductor records only for graphs that
    TorchDynamo captured (it needs to know which inputs keep their memory from call to call)."""
    return {**inductor_options(mode, device), "triton.cudagraphs": False}


def compile_function(fn: Callable[..., Any], mode: str, device: torch.device,
                     symbolic_sizes: bool = False) -> Callable[..., Any]:
    """``fn`` compiled by inductor in ``mode`` for tensors on ``device``: once per input shape,
    or once for symbolic sizes (with CUDA graphs skipped: they would be recorded per size)."""
    options = inductor_options(mode, device)
    if symbolic_sizes:
        options["triton.cudagraph_skip_dynamic_graphs"] = True
    compiled = torch.compile(fn, dynamic=symbolic_sizes, options=options)
    if not uses_cuda_graphs(mode, device):
        return compiled

    @functools.wraps(fn)
    def replay(*args: Any, **kwargs: Any) -> Any:
        # A CUDA graph writes every replay's outputs into the same memory: each call starts a new
        # step, and its outputs are cloned so that the metrics and actions a caller keeps survive
        # the next replay (clone is differentiable: losses still backpropagate).
        torch.compiler.cudagraph_mark_step_begin()
        return tree_map_only(torch.Tensor, torch.clone, compiled(*args, **kwargs))
    return replay


def compile_methods(agent: Agent) -> None:
    """Replaces the agent's compiled (and, with CUDA graphs, acting) methods by their compiled
    versions when ``config.compile``; raises ValueError for an agent without networks."""
    config = agent.config
    if not config.compile:
        return
    if not agent.compiled_methods:
        raise ValueError(f"{agent.name} has no networks to compile: drop --compile")
    device = torch.device(config.device)
    mode = resolve_compile_mode(config.compile_mode, device)
    for name in agent.compiled_methods:
        setattr(agent, name, compile_function(getattr(agent, name), mode, device, agent.loss_batch_size_varies))
    # (An agent that traces its whole steps traces its acting too: Agent.trace_methods.)
    for name in agent.acting_methods if uses_cuda_graphs(mode, device) and not agent.traces_graphs() else ():
        setattr(agent, name, compile_function(getattr(agent, name), mode, device))


def compile_env_step(env: Any, mode: str) -> None:
    """``--compile``: a torch-native env's step arithmetic as one graph as well
    (``TorchClassicControlEnv.trace_step``, compiled like the agents' whole steps by
    ``TracedGraphs``); other envs step as they are."""
    trace_step = getattr(env, "trace_step", None)  # (wrappers pass it on from the env they wrap)
    if trace_step is None:
        return
    options = traced_graph_options(resolve_compile_mode(mode, env.device), env.device)
    trace_step(lambda advance, bound: TracedGraphs(advance, options, bound=bound))


def compile_replay_adds(agent: Agent, buffer: ReplayBuffer) -> None:
    """Where ``--compile`` traces an agent's steps on the CPU, ``buffer``'s add of a step runs as
    one graph too (``ReplayBuffer.trace_adds``), in place of some fifteen small writes. (On a GPU
    the adds stay as they are: not measured there.)"""
    if agent.traces_graphs() and agent.device.type == "cpu":
        options = agent.inductor_options()
        buffer.trace_adds(lambda function, bound: TracedGraphs(function, options, bound=bound))


def compile_seconds() -> float:
    """Seconds ``torch.compile`` and ``TracedGraphs`` have spent compiling in this process."""
    return torch._dynamo.utils.calculate_time_spent().get("total_wall_time", 0.0) + TracedGraphs.compile_seconds
