"""Shared machinery of the torch-native classic-control environments.

Each environment keeps the state of all N copies as one tensor and steps them with batched
tensor ops, so a whole batch costs a few dozen kernel launches whatever N is. Subclasses give
the physics (one gymnasium ``step`` written over the batch); this class does everything
gymnasium's wrappers do around it: the ``TimeLimit`` truncation, same-step autoreset with
``info["final_obs"]``, episode statistics, seeding and checkpointing.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import torch
from torch import Tensor

from envs.vec_env import VecEnv

SUPPORTED_DTYPES = (torch.float32, torch.float64)


class TorchClassicControlEnv(VecEnv):
    """N copies of one gymnasium classic-control environment as batched tensor ops.

    The state is stored as ``[state_dim, N]`` (one contiguous row per physical variable, which
    keeps every elementwise op contiguous); ``state_dict()["state"]`` exposes it as
    ``[N, state_dim]`` in the order of gymnasium's ``env.unwrapped.state``.

    Physics runs in ``dtype`` (float32 by default; float64 reproduces gymnasium's float64 numpy
    arithmetic to round-off, while gymnasium computes some envs, e.g. MountainCarContinuous, in
    float32, which float64 here then matches only to float32's precision per step).
    Observations are always float32, as in gymnasium's spaces;
    rewards and episode returns are in ``dtype``.

    ``validate_actions`` (default: on the CPU only) checks discrete actions are in range, which
    reads one boolean back from the device each step: on a GPU that would stall every step, and
    an agent's own actions are in range by construction. Pass ``True`` to check actions from
    elsewhere.

    ``draw_resets_for_all`` (default: on any device but the CPU) draws a reset state for every
    env at every step and keeps those of the envs whose episode ended, which never syncs with the
    host; off, only the ended envs draw one. The two give different (each reproducible) streams
    of reset states for one seed.

    ``seed`` may also be a list of K seeds: the envs then form K equal groups, group k drawing
    its reset states from a generator of its own seeded with ``seed[k]``, so each group behaves
    exactly as a batch of ``num_envs / K`` envs built with that one seed (what a multi-seed run
    needs: K independent experiments stepped as one batch).
    """

    resumable = True
    env_id: ClassVar[str]
    state_dim: ClassVar[int]
    default_max_episode_steps: ClassVar[int]

    def __init__(self, num_envs: int, *, seed: int | Sequence[int] = 0, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32, max_episode_steps: int | None = None,
                 validate_actions: bool | None = None, draw_resets_for_all: bool | None = None) -> None:
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if dtype not in SUPPORTED_DTYPES:
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        max_steps = self.default_max_episode_steps if max_episode_steps is None else max_episode_steps
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_episode_steps must be a positive integer, got {max_steps!r}")
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.dtype = dtype
        self.max_episode_steps = max_steps
        self.validate_actions = self.device.type == "cpu" if validate_actions is None else validate_actions
        self.draw_resets_for_all = (self.device.type != "cpu" if draw_resets_for_all is None
                                    else draw_resets_for_all)
        seeds = _seed_list(seed)
        if num_envs % len(seeds):
            raise ValueError(f"num_envs ({num_envs}) must be a multiple of the number of seeds ({len(seeds)})")
        self.generators = [torch.Generator(device=self.device).manual_seed(s) for s in seeds]
        # Allocated once; reset() fills them, step() updates them in place.
        self._state = torch.zeros(self.state_dim, num_envs, dtype=dtype, device=self.device)
        self._fresh = torch.empty_like(self._state)
        self._elapsed_steps = torch.zeros(num_envs, dtype=torch.int64, device=self.device)
        self._episode_return = torch.zeros(num_envs, dtype=dtype, device=self.device)
        self._episode_length = torch.zeros(num_envs, dtype=torch.int64, device=self.device)
        self._has_reset = False
        self._advance_step: Callable[[Tensor], tuple[Tensor, ...]] = functools.partial(
            self._advance, *self._step_tensors())

    # ----- what a subclass provides -------------------------------------------------------

    def _sample_initial_state(self, out: Tensor, generator: torch.Generator) -> None:
        """Fills ``out`` (``[state_dim, n]``) with gymnasium's reset distribution, drawn from
        ``generator``."""
        raise NotImplementedError

    def _transition(self, state: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """One gymnasium ``step`` of the unwrapped env, updating ``state`` in place; returns
        ``(reward, terminated)``."""
        raise NotImplementedError

    def _observe(self, state: Tensor) -> Tensor:
        """``[state_dim, N]`` state -> ``[N, *obs_shape]`` float32 observation (a new tensor)."""
        raise NotImplementedError

    # ----- the VecEnv contract ------------------------------------------------------------

    def reset(self, seed: int | Sequence[int] | None = None) -> Tensor:
        """Starts fresh episodes in every env; ``seed`` (one per seed group) reseeds the generators."""
        if seed is not None:
            seeds = _seed_list(seed)
            if len(seeds) != len(self.generators):
                raise ValueError(f"reset got {len(seeds)} seeds for {len(self.generators)} seed groups")
            for generator, group_seed in zip(self.generators, seeds):
                generator.manual_seed(group_seed)
        self._draw_initial_states(self._state)
        self._elapsed_steps.zero_()
        self._episode_return.zero_()
        self._episode_length.zero_()
        self._has_reset = True
        return self._observe(self._state)

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        if not self._has_reset:
            raise ValueError("call reset() before step()")
        reward, terminated, truncated, done, final_obs, episode_return, episode_length = self._advance_step(
            self._check_action(action))
        if self.draw_resets_for_all:
            # Every env draws a reset state, the ended ones keep it: no host sync, and the
            # generator's stream does not depend on which episodes ended.
            self._draw_initial_states(self._fresh)
            torch.where(done, self._fresh, self._state, out=self._state)
            obs = torch.where(done.unsqueeze(1), self._observe(self._state), final_obs)
        else:
            # On the CPU the ended envs' indices cost nothing to read, and drawing only their
            # reset states saves most of the step's time at large N; a step that ended no episode
            # (most steps of a few envs, an evaluation's) draws nothing and skips the resets.
            ended = done.nonzero().squeeze(1)
            obs = final_obs.clone()
            if len(ended):
                fresh = self._state.new_empty(self.state_dim, ended.numel())
                self._draw_initial_states(fresh, ended)
                self._state[:, ended] = fresh
                obs[ended] = self._observe(fresh)
        info = {"final_obs": final_obs, "episode_done": done, "episode_return": episode_return,
                "episode_length": episode_length}
        return obs, reward, terminated, truncated, info

    def _step_tensors(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The tensors a step updates in place, as ``_advance`` takes them."""
        return self._state, self._elapsed_steps, self._episode_return, self._episode_length

    def _advance(self, state: Tensor, elapsed_steps: Tensor, episode_return: Tensor, episode_length: Tensor,
                 action: Tensor) -> tuple[Tensor, ...]:
        """A step's arithmetic up to the reset draws: the transition, the ``TimeLimit`` count and
        the episode statistics, updated in place (the statistics and the count restart where an
        episode ended). Returns the reward, terminated, truncated, their union ``done``, the
        observation before any reset and the finished episodes' returns and lengths (0 elsewhere).
        A pure tensor function of its arguments, which ``trace_step`` compiles as one graph."""
        reward, terminated = self._transition(state, action)
        elapsed_steps += 1
        # gymnasium's TimeLimit sets truncated on the last step even when the env terminated too.
        truncated = elapsed_steps >= self.max_episode_steps
        done = terminated | truncated
        episode_return += reward
        episode_length += 1
        finished_return, finished_length = torch.where(done, episode_return, 0.0), torch.where(done, episode_length, 0)
        elapsed_steps.masked_fill_(done, 0)
        episode_return.masked_fill_(done, 0.0)
        episode_length.masked_fill_(done, 0)
        return reward, terminated, truncated, done, self._observe(state), finished_return, finished_length

    def trace_step(self, compile_graph: Callable[[Callable[..., Any], tuple[Tensor, ...]], Callable[..., Any]]) -> None:
        """Runs every later step's arithmetic (``_advance``: all but the reset draws, whose count
        depends on how many episodes ended) as the function ``compile_graph(_advance, bound)``
        returns, called with each step's action after the tensors ``bound``: one compiled graph
        (``agents.traced_graphs.TracedGraphs``, which ``--compile`` uses on the CPU) in place of
        about forty small ops."""
        self._advance_step = compile_graph(self._advance, self._step_tensors())

    def _draw_initial_states(self, out: Tensor, envs: Tensor | None = None) -> None:
        """Fills the columns of ``out`` with reset states for all envs, or for the sorted env
        indices ``envs``; each seed group's columns come from that group's generator."""
        if len(self.generators) == 1:
            self._sample_initial_state(out, self.generators[0])
            return
        if envs is None:
            counts = [self.num_envs // len(self.generators)] * len(self.generators)
        else:
            group = envs // (self.num_envs // len(self.generators))
            counts = torch.bincount(group, minlength=len(self.generators)).tolist()
        for generator, columns in zip(self.generators, out.split(counts, dim=1)):
            if columns.shape[1]:
                self._sample_initial_state(columns, generator)

    def _check_action(self, action: Tensor) -> Tensor:
        if not isinstance(action, Tensor):
            raise ValueError(f"action must be a torch.Tensor, got {type(action).__name__}")
        space = self.single_action_space
        if isinstance(space, gym.spaces.Discrete):
            if action.shape != (self.num_envs,):
                raise ValueError(f"discrete actions must have shape [{self.num_envs}], "
                                 f"got {list(action.shape)}")
            if action.dtype.is_floating_point or action.dtype.is_complex or action.dtype == torch.bool:
                raise ValueError(f"discrete actions must be integers, got {action.dtype}")
            action = action.to(self.device, non_blocking=True)
            if self.validate_actions:
                low, high = torch.aminmax(action)  # one fast reduction, one host read below
                if bool((low < space.start) | (high >= space.start + space.n)):
                    raise ValueError(f"discrete actions must lie in [{space.start}, "
                                     f"{space.start + space.n - 1}]")
            return action
        if action.shape != (self.num_envs, *space.shape):
            raise ValueError(f"actions must have shape {[self.num_envs, *space.shape]}, "
                             f"got {list(action.shape)}")
        if not action.dtype.is_floating_point:
            raise ValueError(f"continuous actions must be floating point, got {action.dtype}")
        return action.to(self.device, self.dtype, non_blocking=True)

    # ----- checkpointing ------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "env_id": self.env_id,
            "state": self._state.T.clone(),
            "elapsed_steps": self._elapsed_steps.clone(),
            "episode_return": self._episode_return.clone(),
            "episode_length": self._episode_length.clone(),
            "generators": [generator.get_state() for generator in self.generators],
            "has_reset": self._has_reset,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("env_id") != self.env_id:
            raise ValueError(f"state_dict is for {state.get('env_id')!r}, not {self.env_id!r}")
        expected = {"state": (self.num_envs, self.state_dim), "elapsed_steps": (self.num_envs,),
                    "episode_return": (self.num_envs,), "episode_length": (self.num_envs,)}
        for key, shape in expected.items():
            if tuple(state[key].shape) != shape:
                raise ValueError(f"state_dict[{key!r}] has shape {list(state[key].shape)}, "
                                 f"expected {list(shape)}")
        self._state.copy_(state["state"].T)
        self._elapsed_steps.copy_(state["elapsed_steps"])
        self._episode_return.copy_(state["episode_return"])
        self._episode_length.copy_(state["episode_length"])
        if len(state["generators"]) != len(self.generators):
            raise ValueError(f"state_dict has {len(state['generators'])} seed groups, this env "
                             f"{len(self.generators)}")
        try:
            for generator, generator_state in zip(self.generators, state["generators"]):
                generator.set_state(generator_state)
        except RuntimeError as error:
            raise ValueError(f"generator state does not fit a {self.device.type} generator: "
                             f"{error}") from None
        self._has_reset = bool(state["has_reset"])

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.env_id}, num_envs={self.num_envs}, "
                f"device={self.device}, dtype={self.dtype})")


def _seed_list(seed: int | Sequence[int]) -> list[int]:
    seeds = [seed] if isinstance(seed, int) else list(seed)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ValueError(f"seed must be an integer or a non-empty list of integers, got {seed!r}")
    return seeds
