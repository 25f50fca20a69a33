"""The ``Agent`` base: what every agent offers users and what the shared ``Runner`` calls."""
from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

from agents.checkpoint import load_checkpoint, seed_everything
from agents.compilation import compile_methods, resolve_compile_mode, traced_graph_options
from representation.files import save_atomic
from agents.config import AgentConfig, nothing_learned_warning
from agents.traced_graphs import ModuleCall, TracedGraphs, call_with_tensors
from agents.spaces import space_from_dict, space_to_dict
from replay import Batch, ReplayBuffer
from wrappers.normalize import RunningMeanStd, normalized_observation

AGENT_FORMAT = "reprl-agent-v1"
# The key of an agent file holding the running statistics its agent's training env normalised
# with, by what they scale ("observation", "reward"; ``wrappers.normalize.normalization_stats``).
NORMALIZATION = "normalization"


class Agent(nn.Module):
    """An agent owns its networks, optimisers and buffer; the ``Runner`` owns the loop.

    Per environment step the runner calls ``rollout_action`` -> env.step -> ``observe`` ->
    ``after_step`` (which updates when the agent's schedule says so and returns metrics).
    """

    name: ClassVar[str]
    config_class: ClassVar[type[AgentConfig]]
    #: Tuned settings by env id, env family or preset name (see ``agents.presets``).
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    #: Independent runs trained together (``agents.multi_seed``); envs per seed = num_envs / num_seeds.
    num_seeds: int = 1
    #: Pure tensor functions that ``--compile`` compiles: the losses of every update ...
    compiled_methods: ClassVar[tuple[str, ...]] = ()
    #: ... and the network calls of every environment step, compiled where they become CUDA graphs.
    acting_methods: ClassVar[tuple[str, ...]] = ()
    #: Whether the batches of ``compiled_methods`` change size from update to update (REINFORCE's
    #: whole episodes): they are then compiled for a symbolic batch size, not once per size.
    loss_batch_size_varies: ClassVar[bool] = False
    #: Whether ``--compile`` compiles ``gradient_step`` whole: loss, gradient, clipping, optimiser step.
    compiles_whole_steps: ClassVar[bool] = False
    #: ... on a GPU too, where such a run is shown to learn what the eager one does
    #: (``tests/agents/test_cuda_path.py``: PPO and DQN); A2C and SAC, not yet tried on a GPU,
    #: compile their losses alone there.
    compiles_whole_steps_on_gpu: ClassVar[bool] = False
    #: Whether ``observe`` takes the transitions of some envs at a time (``env_ids``) and
    #: ``rollout_action`` returns no extras: what an asynchronous env (``--env-batch-size``) needs.
    steps_envs_asynchronously: ClassVar[bool] = False

    def __init__(self, config: AgentConfig, observation_space: spaces.Space, action_space: spaces.Space):
        super().__init__()
        config.validate()
        if config.env_batch_size and not self.steps_envs_asynchronously:
            raise ValueError(f"env_batch_size needs a replay agent (dqn, sac), not {self.name}")
        seed_everything(config.seed)  # the same seed gives the same initial networks
        self.config = config
        self.observation_space = observation_space
        self.action_space = action_space
        self.device = torch.device(config.device)
        self.aux = None  # auxiliary representation objectives, attached by the agent on its encoder
        # The running statistics the training env normalises observations and rewards with (set by
        # the ``Runner``, saved with the agent, continued by a later run): ``predict`` standardises
        # raw observations by the observations'.
        self.normalization: dict[str, RunningMeanStd] = {}
        compile_methods(self)  # compilation happens at each method's first call, once the networks exist

    # ----------------------------------------------------------------- what users call
    def act(self, obs: Tensor, explore: bool = True) -> Tensor:
        """Actions for a batch of observations as the agent's own env gives them (standardised
        with ``normalize_obs``), ready for ``env.step``."""
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        """``act`` for code that steps a plain Gymnasium env (Stable-Baselines3's ``predict``): one
        observation or a batch, as numpy arrays, lists or tensors, in; numpy actions out, one
        action for one observation, so ``env.step(agent.predict(obs))`` works as it stands. An
        agent trained on normalised observations standardises them by its training statistics
        (``observation_stats``), as its training env did."""
        array = np.asarray(obs.cpu() if isinstance(obs, Tensor) else obs)
        single = array.shape == self.observation_space.shape
        if not single and array.shape[1:] != self.observation_space.shape:
            raise ValueError(f"expected an observation of shape {self.observation_space.shape} or a batch of them, "
                             f"got shape {array.shape}")
        batch = torch.as_tensor(array, device=self.device)
        if self.observation_stats is not None:
            batch = normalized_observation(self.observation_stats, batch)
        actions = self.act(batch.unsqueeze(0) if single else batch, explore=not deterministic).cpu().numpy()
        return actions[0] if single else actions

    def update(self, batch: Batch) -> dict[str, Tensor]:
        """One gradient step on ``batch``; returns metrics named as in TensorBoard."""
        raise NotImplementedError

    def learn(self, total_steps: int | None = None, run_dir: str | os.PathLike | None = None,
              progress: bool = True, callback: Callable[[int, dict[str, float]], bool | None] | None = None
              ) -> "Agent":
        """Trains through the shared ``Runner`` (``total_steps`` defaults to ``config.steps``) into
        ``run_dir``, which must not hold a run already (by default a new folder under ``runs/``).
        ``callback(step, metrics)`` sees each line logged and stops training by returning False
        (``Runner``), e.g. ``lambda step, m: m.get("eval/return_mean", 0) < 475``."""
        from agents.runner import Runner, holds_a_run

        if run_dir is not None and holds_a_run(run_dir):
            raise ValueError(f"{run_dir} already holds a run, which learn() would overwrite: pick another run_dir "
                             f"(python scripts/train.py --resume {run_dir} continues it)")
        if total_steps is not None:
            self.config.steps = int(total_steps)
        warning = nothing_learned_warning(self.config)
        if warning:
            warnings.warn(warning, stacklevel=2)
        Runner(self, run_dir=run_dir, progress=progress, callback=callback).run()
        return self

    @classmethod
    def from_env(cls, env_id: str, **settings: Any) -> "Agent":
        """An agent for ``env_id`` with its preset applied, then ``settings`` on top."""
        from agents.presets import resolve_config
        from envs import make_env

        config = resolve_config(cls, {"env": env_id, **settings})
        env = make_env(config.env, 1, seed=config.seed, backend=config.backend, **config.env_options)
        observation_space, action_space = env.single_observation_space, env.single_action_space
        env.close()
        return cls(config, observation_space, action_space)

    def payload(self) -> dict[str, Any]:
        payload = {"format": AGENT_FORMAT, "agent": self.name, "config": self.config.to_dict(),
                   "observation_space": space_to_dict(self.observation_space),
                   "action_space": space_to_dict(self.action_space), "model": self.state_dict()}
        if self.normalization:
            payload[NORMALIZATION] = {name: stats.state_dict() for name, stats in self.normalization.items()}
        return payload

    @property
    def observation_stats(self) -> RunningMeanStd | None:
        """The statistics of the observations it was trained on with ``normalize_obs``."""
        return self.normalization.get("observation")

    def use_normalization(self, stats: dict[str, RunningMeanStd]) -> None:
        """Takes ``stats`` as ``normalization`` (the training env's own, which they follow)."""
        self.normalization = dict(stats)

    def save(self, path: str | os.PathLike) -> None:
        save_atomic(self.payload(), path)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None) -> "Agent":
        """Rebuilds a saved agent (or the agent inside a run's ``checkpoint.pt``)."""
        return cls.from_payload(load_checkpoint(path, AGENT_FORMAT), device)

    @classmethod
    def from_payload(cls, payload: dict[str, Any], device: str | None = None) -> "Agent":
        from agents.registry import agent_class

        agent_cls = agent_class(payload["agent"])
        if cls is not Agent and not issubclass(agent_cls, cls):
            raise ValueError(f"the file holds a {payload['agent']} agent, not a {cls.name} agent")
        config = agent_cls.config_class.from_dict(payload["config"])
        encoder_file, config.encoder_checkpoint = config.encoder_checkpoint, ""  # the weights below hold it
        if device is not None:
            config.device = device
        observation_space = space_from_dict(payload["observation_space"])
        action_space = space_from_dict(payload["action_space"])
        if "seeds" in payload:
            from agents.multi_seed import build_multi_seed

            agent = build_multi_seed(agent_cls, config, observation_space, action_space, payload["seeds"])
        else:
            agent = agent_cls(config, observation_space, action_space)
        agent.load_state_dict(payload["model"])
        groups = agent.num_seeds if agent.num_seeds > 1 else None
        agent.use_normalization({name: RunningMeanStd.from_state_dict(state, agent.device, groups)
                                 for name, state in payload.get(NORMALIZATION, {}).items()})
        config.encoder_checkpoint = encoder_file  # kept as the record of where the encoder came from
        return agent

    def encoder_payload(self) -> dict[str, Any]:
        """``representation_encoder()`` as an encoder file's contents (``save_encoder``'s): what
        ``--encoder-checkpoint`` reads from an agent file or a run's ``checkpoint.pt``."""
        from agents.multi_seed import MultiSeed

        if isinstance(self, MultiSeed):
            raise ValueError("a multi-seed checkpoint holds one encoder per seed: pass one seed's "
                             "RUN_DIR/seed_S/agent.pt")
        return {"name": self.config.encoder, "options": dict(self.config.encoder_options),
                "state_dict": {k: v.detach().cpu() for k, v in self.representation_encoder().state_dict().items()}}

    def representation_encoder(self) -> nn.Module:
        """The encoder another agent can start from: the Q-network's for DQN, the critic's for SAC
        (which a shared actor uses too), the policy's for the on-policy actor-critics."""
        raise ValueError(f"a {self.name} agent has no encoder")

    # ------------------------------------------- auxiliary objectives (--aux), any agent
    def attach_auxiliary(self, encoder: nn.Module) -> list[nn.Parameter]:
        """Builds ``config.aux`` on ``encoder``; returns the parameters the agent's optimiser
        must also train (joint mode)."""
        from agents.auxiliary import Auxiliary

        self.aux = Auxiliary.from_config(self.config, encoder, self.observation_space, self.action_space, self.device)
        return self.aux.parameters_for_agent_optimizer() if self.aux is not None else []

    def gradient_step(self, optimizer: torch.optim.Optimizer, batch: Batch | None, max_grad_norm: float,
                      *loss_args: Any, loss: str = "loss", frozen: nn.Module | None = None) -> tuple[Any, ...]:
        """One step of ``optimizer`` on the agent's method ``loss`` called with ``loss_args``, which
        returns the loss, then any other outputs, the last its metrics: backward, clipping and the
        step (``optimizer_step``, whose metrics join the loss's). Returns the loss's other outputs.
        Compiled, where ``compiles_whole_steps`` and nothing else trains in the step (no auxiliary
        objective), the four are one graph (``whole_gradient_step``).

        ``frozen``: a module the loss runs through but must not train (SAC's critics under its
        actor's loss). Eagerly its parameters stop recording gradients during the loss; a
        compiled step differentiates the optimiser's parameters only, so it needs nothing."""
        settings = self._whole_step_settings(optimizer)
        if settings is None:
            with _without_gradients(frozen):
                loss_value, *outputs = getattr(self, loss)(*loss_args)
            outputs[-1] = {**outputs[-1], **self.optimizer_step(optimizer, loss_value, batch, max_grad_norm)}
            return tuple(outputs)
        group, parameter, state = optimizer.started_state()
        lr = torch.full((), group["lr"], device=parameter.device)
        # The step compiled once per optimiser (in a dict, which keeps it out of the agent's modules).
        steps = self.__dict__.setdefault("_whole_steps", {})
        if id(optimizer) not in steps:
            steps[id(optimizer)] = self.traced(self.whole_gradient_step, getattr(type(self), loss), parameter)
        return steps[id(optimizer)](type(optimizer).traced_update, state, lr, settings, max_grad_norm, loss_args)

    def inductor_options(self) -> dict[str, Any]:
        """The inductor settings of the agent's traced graphs (``--compile-mode``, device)."""
        return traced_graph_options(resolve_compile_mode(self.config.compile_mode, self.device), self.device)

    def traced(self, function: Callable[..., Any], method: Callable[..., Any], parameter: Tensor) -> Callable[..., Any]:
        """``function(ModuleCall(self, method), layout, parameter, other_tensors, *args)`` as a
        function of ``*args``, compiled by inductor without TorchDynamo (``TracedGraphs``):
        ``function`` is ``functional_call`` or ``whole_gradient_step``, which compute ``method``
        with the agent's parameters as views of the flat ``parameter`` (``layout``) and its
        ``other_tensors``. All of them are graph inputs, so a graph sees their values of each call."""
        return TracedGraphs(functools.partial(function, ModuleCall(self, method), self._flat_layout(parameter)),
                            self.inductor_options(), bound=(parameter, self._tensors_outside(parameter)))

    def traces_graphs(self) -> bool:
        """Whether ``--compile`` compiles whole steps and acting as ``TracedGraphs``: for agents
        that say ``compiles_whole_steps`` (and, on a GPU, ``compiles_whole_steps_on_gpu``)."""
        return (self.config.compile and self.compiles_whole_steps
                and (self.device.type == "cpu" or self.compiles_whole_steps_on_gpu))

    def trace_methods(self, *names: str, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Where ``--compile`` compiles whole gradient steps (``traces_graphs``), compiles the named methods
        (pure tensor functions of the agent: the network calls and draws of every step or rollout)
        the same way, each one graph (``traced``), with the parameters of ``optimizer`` (default:
        ``self.optimizer``) as views of its flat one; once per agent, at its first training. None of
        them may call another: it would find the compiled version, not the method, on the agent."""
        optimizer = self.optimizer if optimizer is None else optimizer
        if not self.traces_graphs() or not hasattr(optimizer, "flat_parameters"):
            return
        flat_parameter = optimizer.param_groups[0]["params"][0]  # (agents.flat_parameters)
        for name in names:
            if name not in self.__dict__:
                traced = self.traced(self.functional_call, getattr(type(self), name), flat_parameter)
                setattr(self, name, functools.partial(_call_with_arguments, traced))

    def _whole_step_settings(self, optimizer: torch.optim.Optimizer) -> tuple | None:
        """The optimiser's constants for ``whole_gradient_step``, None where the step runs eagerly."""
        if not self.traces_graphs() or self.aux is not None:
            return None
        traced_settings = getattr(optimizer, "traced_settings", None)  # (agents.flat_parameters)
        return traced_settings() if traced_settings is not None else None

    @staticmethod
    def whole_gradient_step(loss_call: ModuleCall, layout: list, parameter: Tensor, other_tensors: dict[str, Tensor],
                            traced_update: Callable[..., None], state: dict[str, Tensor], lr: Tensor,
                            settings: tuple, max_grad_norm: float, loss_args: tuple) -> tuple[Any, ...]:
        """``gradient_step`` as one function of tensors for inductor (``TracedGraphs``): the
        gradient of the loss (``loss_call``'s forward, with the agent's parameters as views of the
        flat ``parameter`` (``layout``: ``_flat_layout``) and its ``other_tensors``
        (``_tensors_outside``)) with respect to those views, by ``torch.func.grad``, joined as one
        flat gradient, and the flat optimiser's ``traced_update`` with it, scaled by clipping's
        factor. Returns the loss's other outputs."""
        def loss_of(views: dict[str, Tensor]) -> tuple[Tensor, tuple[Any, ...]]:
            loss, *outputs = call_with_tensors(loss_call, {**views, **other_tensors}, loss_args)
            return loss, tuple(outputs)

        # Differentiated with respect to the views, whose gradients are then joined in the flat
        # layout: differentiating the views themselves would fill a flat tensor of zeros per
        # parameter and sum them (14 us of each step of DQN's 256-256 Q-network).
        grads, outputs = torch.func.grad(loss_of, has_aux=True)(Agent._views(layout, parameter))
        grad = torch.cat([_in_storage_order(grads[name], stride) for name, _, stride, _ in layout])
        scale = Agent.clip_scale(torch.linalg.vector_norm(grad), max_grad_norm) if max_grad_norm > 0 else None
        traced_update(parameter, grad, scale, state, lr, *settings)
        return outputs

    @staticmethod
    def functional_call(module_call: ModuleCall, layout: list, parameter: Tensor, other_tensors: dict[str, Tensor],
                        args: tuple) -> Any:
        """``module_call(*args)`` computed with the agent's parameters as views of the flat
        ``parameter`` (``layout``: ``_flat_layout``) and its ``other_tensors``."""
        return call_with_tensors(module_call, {**Agent._views(layout, parameter), **other_tensors}, args)

    @staticmethod
    def _views(layout: list, parameter: Tensor) -> dict[str, Tensor]:
        """The agent's parameters as views of the flat ``parameter``, by name (``layout``)."""
        return {name: parameter.as_strided(shape, stride, offset) for name, shape, stride, offset in layout}

    def _flat_layout(self, parameter: Tensor) -> list[tuple[str, torch.Size, tuple[int, ...], int]]:
        """Where each parameter lies in the flat ``parameter`` it is a view of: its name (under
        ``ModuleCall``'s ``module``), shape, strides and offset, in the order of the offsets;
        together they tile ``parameter`` (as ``agents.flat_parameters`` lays them out)."""
        base = parameter.untyped_storage().data_ptr()
        layout = sorted(((f"module.{name}", p.shape, p.stride(), p.storage_offset())
                         for name, p in self.named_parameters() if p.untyped_storage().data_ptr() == base),
                        key=lambda entry: entry[3])
        ends = [parameter.storage_offset()] + [offset + shape.numel() for _, shape, _, offset in layout]
        if [offset for *_, offset in layout] != ends[:-1] or ends[-1] != parameter.storage_offset() + parameter.numel():
            raise ValueError("the agent's parameters do not tile its flat parameter")
        return layout

    def _tensors_outside(self, parameter: Tensor) -> dict[str, Tensor]:
        """The agent's parameters that are not views of the flat ``parameter`` (a target
        network's), and its buffers, by their names under ``ModuleCall``'s ``module``."""
        base = parameter.untyped_storage().data_ptr()
        return {**{f"module.{name}": p for name, p in self.named_parameters()
                   if p.untyped_storage().data_ptr() != base},
                **{f"module.{name}": b for name, b in self.named_buffers()}}

    def optimizer_step(self, optimizer: torch.optim.Optimizer, loss: Tensor, batch: Batch | None,
                       max_grad_norm: float) -> dict[str, Tensor]:
        """Backward of ``loss`` (plus the joint auxiliary loss on ``batch``), gradient clipping by
        global norm, the step, then the separate auxiliary step; returns the auxiliary metrics."""
        aux_loss, metrics = self.auxiliary_loss(batch) if batch is not None else (0.0, {})
        flat = getattr(optimizer, "flat_parameters", None)  # agents.flat_parameters
        if flat is None:
            optimizer.zero_grad(set_to_none=True)
        else:
            flat.zero_grad()
        if isinstance(aux_loss, Tensor):
            loss = loss + aux_loss
        (loss.sum() if loss.dim() else loss).backward()  # a sum over seeds when K seeds are stacked
        if max_grad_norm > 0:
            self.clip_gradients(optimizer, max_grad_norm)
        getattr(optimizer, "step_directly", optimizer.step)()  # (agents.flat_parameters)
        if batch is not None:
            self.auxiliary_after_step(batch, metrics)
        return metrics

    def clip_gradients(self, optimizer: torch.optim.Optimizer, max_grad_norm: float) -> None:
        """Scales the gradients of ``optimizer``'s parameters to global L2 norm <= ``max_grad_norm``:
        ``nn.utils.clip_grad_norm_``'s arithmetic without its per-call grouping of the tensors by
        device and dtype (all of an agent's live on one device). A flat optimiser's norm is that
        of its one flat gradient, the same norm up to rounding (summed in another order)."""
        flat = getattr(optimizer, "flat_parameters", None)
        if flat is not None:
            flat.grad.mul_(self.clip_scale(torch.linalg.vector_norm(flat.grad), max_grad_norm))
            return
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if grads:
            total_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
            torch._foreach_mul_(grads, self.clip_scale(total_norm, max_grad_norm))

    @staticmethod
    def clip_scale(total_norm: Tensor, max_grad_norm: float) -> Tensor:
        """The factor ``clip_grad_norm_`` scales gradients of norm ``total_norm`` by."""
        return (max_grad_norm / (total_norm + 1e-6)).clamp_(max=1.0)

    def auxiliary_view(self, batch: Batch) -> Batch:
        """The batch an off-policy agent's update trains on (CURL may share its augmented anchor)."""
        return batch if self.aux is None else self.aux.agent_view(batch)

    def auxiliary_loss(self, batch: Batch) -> tuple[Tensor | float, dict[str, Tensor]]:
        """The weighted auxiliary loss to add to the agent's loss before backward (joint mode)."""
        return (0.0, {}) if self.aux is None else self.aux.joint_loss(batch)

    def auxiliary_after_step(self, batch: Batch, metrics: dict[str, Tensor]) -> None:
        """After the agent's optimiser step: the separate-mode step and momentum encoders."""
        if self.aux is not None:
            metrics.update(self.aux.separate_step(batch) or {})
            self.aux.after_update()

    # ------------------------------------------------------------ what the Runner calls
    def setup_training(self, num_envs: int) -> None:
        """Creates buffers for ``num_envs`` environments."""
        raise NotImplementedError

    def rollout_action(self, obs: Tensor, step: int) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """``(action to store, action for env.step, extras for observe)``."""
        raise NotImplementedError

    def observe(self, obs: Tensor, action: Tensor, reward: Tensor, next_obs: Tensor, terminated: Tensor,
                truncated: Tensor, extras: dict[str, Tensor], env_ids: Tensor | None = None) -> None:
        """Stores one batched transition; ``next_obs`` is the true final obs where episodes ended.
        ``env_ids``: which envs the rows are (an asynchronous env's); None: all, in order."""
        raise NotImplementedError

    def after_step(self, next_obs: Tensor, step: int) -> dict[str, Tensor] | None:
        """Runs the updates due at ``step``; returns their metrics, or None if none ran."""
        raise NotImplementedError

    def seed_agents(self) -> list["Agent"]:
        """The agent of each seed, as a plain single-seed agent (evaluated and saved per seed)."""
        return [self]

    def episodes_restarted(self) -> None:
        """The envs were reset to fresh episodes under a resumed agent (envs that cannot be
        snapshotted, such as Atari): a replay buffer marks where its episodes were cut."""
        if isinstance(getattr(self, "buffer", None), ReplayBuffer):
            self.buffer.cut_episodes()

    def training_state(self, include_buffer: bool = True) -> dict[str, Any]:
        """Optimisers, counters and (optionally) the replay buffer, for checkpoints."""
        raise NotImplementedError

    def load_training_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError


def _in_storage_order(tensor: Tensor, stride: tuple[int, ...]) -> Tensor:
    """``tensor``'s elements, flattened in the order a dense tensor of ``stride`` stores them
    (a channels-last weight's as NHWC)."""
    order = sorted(range(tensor.dim()), key=lambda dim: -stride[dim])
    return tensor.permute(order).reshape(-1)


@contextlib.contextmanager
def _without_gradients(module: nn.Module | None) -> Iterator[None]:
    """``module``'s trainable parameters record no gradients inside the block."""
    parameters = [] if module is None else [p for p in module.parameters() if p.requires_grad]
    for p in parameters:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in parameters:
            p.requires_grad_(True)


def _call_with_arguments(traced: Callable[[tuple], Any], *args: Any) -> Any:
    """A traced ``functional_call`` (``Agent.traced``) called as the method it computes."""
    return traced(args)
