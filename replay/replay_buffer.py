"""Off-policy replay: uniform or prioritized sampling of n-step transitions, frames stored once.

Three parts, as in Dopamine's split: storage (per-step rows ``[R, N]`` plus ``FrameStore`` for
observations), how transitions accumulate (``n_step_window`` collapses stored steps at sample
time), and how they are sampled (uniform over the sampleable range, or a ``SumTree``).

Steps are counted absolutely and per env: step ``s`` of env ``e`` lives in row ``s % R``. Each
add stores one step of all envs, or of the envs an asynchronous env returned (``env_ids``, in any
order and at any rate per env). A transition at step ``s`` of env ``e`` is *sampleable* when
  * its row still holds it and its observation's frames are still stored (``s >= valid_from[e]``),
  * its n-step window and the action after it are known (``s <= env_steps[e] - 1 - n``; for
    n = 1 this is one step of lag, so ``next_action`` is always real).
Prioritized sampling gives every other slot zero mass; a transition enters the tree, at the
largest priority seen so far, in the add that makes it sampleable.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import torch
from torch import Tensor

from replay.batch import Batch
from replay.frame_store import FrameStore, env_index
from replay.n_step import n_step_window
from replay.spaces import element_nbytes, tensor_spec
from replay.sum_tree import SumTree

# Bytes per stored step besides its frame: frame position (int64), reward (float32), two flags.
_STEP_OVERHEAD_NBYTES = 8 + 4 + 1 + 1
# The buffer's tensors an add reads or writes (``_store``), besides its frame store's.
_STORED = ("obs_pos", "action", "reward", "terminated", "truncated", "episode_start", "env_steps", "_envs")
# What ``trace_adds`` takes: a compiler of a function with the tensors bound ahead of its arguments.
GraphCompiler = Callable[[Callable[..., None], tuple[Tensor, ...]], Callable[..., None]]


@contextlib.contextmanager
def _replaced(owner: Any, names: tuple[str, ...], tensors: tuple[Tensor, ...]) -> Iterator[None]:
    """``owner``'s attributes ``names`` set to ``tensors`` for the duration (a traced add's inputs)."""
    kept = [getattr(owner, name) for name in names]
    for name, tensor in zip(names, tensors):
        setattr(owner, name, tensor)
    try:
        yield
    finally:
        for name, tensor in zip(names, kept):
            setattr(owner, name, tensor)


def _frame_capacity(rows: int, frame_stack: int, n_step: int) -> int:
    """Frames per env: a row's worth plus 1/64 slack for the extra frames that episode starts add
    (K - 1 each); the fixed term keeps the newest sampleable transitions' frames always stored.
    Where episodes are so short that the slack runs out, the oldest transitions are dropped
    early (they count neither in ``len`` nor in sampling)."""
    return rows + rows // 64 + (n_step + 2) * (frame_stack + 1)


class ReplayBuffer:
    """Transitions from N envs in a ring of ``capacity // num_envs`` rows, all on ``device``.

    ``groups``: the envs form that many equal groups (in order), each with its own running
    maximum priority (``replay.grouped_replay_buffer`` keeps them apart)."""

    def __init__(self, capacity: int, num_envs: int, observation_space: gym.Space,
                 action_space: gym.Space, device: torch.device | str = "cpu", *,
                 frame_stack: int = 1, n_step: int = 1, gamma: float = 0.99,
                 prioritized: bool = False, alpha: float = 0.6, priority_eps: float = 1e-6,
                 groups: int = 1) -> None:
        if num_envs < 1 or n_step < 1 or frame_stack < 1:
            raise ValueError(f"num_envs, n_step and frame_stack must be >= 1, got "
                             f"{num_envs}, {n_step}, {frame_stack}")
        if groups < 1 or num_envs % groups:
            raise ValueError(f"num_envs ({num_envs}) must be a multiple of the number of groups ({groups})")
        rows = capacity // num_envs
        if rows <= n_step + 1:
            raise ValueError(f"capacity {capacity} leaves {rows} steps per env: need more than "
                             f"n_step + 1 = {n_step + 1}")
        if not 0.0 <= gamma <= 1.0 or alpha < 0.0 or priority_eps < 0.0:
            raise ValueError(f"need 0 <= gamma <= 1, alpha >= 0, priority_eps >= 0; got "
                             f"{gamma}, {alpha}, {priority_eps}")
        self.device = torch.device(device)
        self.rows, self.num_envs = rows, num_envs
        self.n_step, self.gamma = n_step, gamma
        self.prioritized, self.alpha, self.priority_eps = prioritized, alpha, priority_eps
        obs_shape, obs_dtype = tensor_spec(observation_space)
        self.action_shape, action_dtype = tensor_spec(action_space)
        self.frames = FrameStore(_frame_capacity(rows, frame_stack, n_step), num_envs, obs_shape,
                                 frame_stack, obs_dtype, self.device)
        self.obs_pos = torch.zeros((rows, num_envs), dtype=torch.int64, device=self.device)
        self.action = torch.zeros((rows, num_envs, *self.action_shape), dtype=action_dtype,
                                  device=self.device)
        self.reward = torch.zeros((rows, num_envs), dtype=torch.float32, device=self.device)
        self.terminated = torch.zeros((rows, num_envs), dtype=torch.bool, device=self.device)
        self.truncated = torch.zeros((rows, num_envs), dtype=torch.bool, device=self.device)
        self.valid_from = torch.zeros(num_envs, dtype=torch.int64, device=self.device)
        self.episode_start = torch.ones(num_envs, dtype=torch.bool, device=self.device)
        self.env_steps = torch.zeros(num_envs, dtype=torch.int64, device=self.device)
        self.added = 0  # transitions added over all envs, counted on the host
        # Host-side facts that spare device work: no env has more steps than ``_steps_bound`` (an
        # add steps each env at most once), and while every add stored all envs they all have
        # ``_lockstep_steps`` (None after an add of some envs), so rows are plain indices.
        self._steps_bound = 0
        self._lockstep_steps: int | None = 0
        self.num_groups, self.group_size = groups, num_envs // groups
        self.tree = self._new_tree() if prioritized else None
        self.max_priority = torch.ones(groups, dtype=torch.float64, device=self.device)  # per group
        self._envs = torch.arange(num_envs, device=self.device)
        self._window = torch.arange(n_step, device=self.device)
        self._lost_probe = torch.arange(frame_stack + 2, device=self.device)
        self._traced_store: Callable[..., None] | None = None  # (trace_adds)

    def _new_tree(self) -> SumTree:
        """The sum-tree of the priorities: one over every slot ``row * N + env``."""
        return SumTree(self.rows * self.num_envs, self.device)

    @staticmethod
    def estimate_nbytes(capacity: int, observation_space: gym.Space, action_space: gym.Space,
                        frame_stack: int = 1, n_step: int = 1, prioritized: bool = False) -> int:
        """Bytes ``nbytes`` would report for one env (more envs change only rounding)."""
        frame_nbytes = element_nbytes(observation_space) // frame_stack
        total = _frame_capacity(capacity, frame_stack, n_step) * frame_nbytes
        total += capacity * (_STEP_OVERHEAD_NBYTES + element_nbytes(action_space))
        return total + (SumTree.estimate_nbytes(capacity) if prioritized else 0)

    @property
    def nbytes(self) -> int:
        tensors = [self.frames.frames, self.obs_pos, self.action, self.reward, self.terminated,
                   self.truncated]
        total = sum(t.numel() * t.element_size() for t in tensors)
        return total + (self.tree.nbytes if self.tree is not None else 0)

    def __len__(self) -> int:
        """Stored transitions (whose observations are still stored), sampleable or not yet."""
        return int((self.env_steps - self.valid_from).clamp(min=0).sum())

    # ----------------------------------------------------------------------------- adding

    def add(self, obs: Tensor, action: Tensor, reward: Tensor, next_obs: Tensor,
            terminated: Tensor, truncated: Tensor, env_ids: Tensor | None = None) -> None:
        """One step of the envs ``env_ids`` (distinct; default: all N in order). ``next_obs`` is
        the true next observation (the final one where an episode ended), and where nothing
        ended that env's next ``obs`` must equal it."""
        env_ids = None if env_ids is None else env_ids.to(self.device, torch.int64)
        envs, of_envs = env_index(env_ids, self._envs)
        b = envs.shape[0]
        if obs.shape != (b, *self.frames.obs_shape) or next_obs.shape != obs.shape:
            raise ValueError(f"obs and next_obs must be shaped {[b, *self.frames.obs_shape]}, "
                             f"got {list(obs.shape)} and {list(next_obs.shape)}")
        if action.shape != (b, *self.action_shape):
            raise ValueError(f"action must be shaped {[b, *self.action_shape]}, got {list(action.shape)}")
        step = (obs, action, reward, next_obs, terminated, truncated)
        if env_ids is None and self._lockstep_steps is not None:
            row, self._lockstep_steps = self._lockstep_steps % self.rows, self._lockstep_steps + 1
            if self._traced_store is not None:
                self._traced_store(*step)
            else:
                self._store(row, envs, of_envs, env_ids, *step)
        else:
            self._lockstep_steps = None
            row = self.env_steps[of_envs] % self.rows
            self._store((row, envs), envs, of_envs, env_ids, *step)
        self.added += b
        self._steps_bound += 1
        lost = self._drop_lost_transitions(envs, of_envs) if self._may_lose_transitions() else None
        if self.tree is not None:
            self._enter_tree(envs, row * self.num_envs + envs, lost)

    def _store(self, at: Any, envs: Tensor, of_envs: Tensor | slice, env_ids: Tensor | None, obs: Tensor,
               action: Tensor, reward: Tensor, next_obs: Tensor, terminated: Tensor, truncated: Tensor,
               traced: bool = False) -> None:
        """Writes one step of ``envs`` at the rows ``at`` (a row for all envs, or ``(rows, envs)``)
        and counts it in their ``env_steps``; ``traced``: with no read on the host."""
        self.obs_pos[at] = self.frames.push(obs, next_obs, self.episode_start[of_envs], env_ids,
                                            skip_unstarted=not traced)
        self.action[at] = action.to(self.action.dtype)
        self.reward[at] = reward.to(torch.float32)
        self.terminated[at] = terminated.to(torch.bool)
        self.truncated[at] = truncated.to(torch.bool)
        self.episode_start[of_envs] = (terminated | truncated).to(torch.bool)
        self.env_steps[of_envs] += 1

    def trace_adds(self, compile_graph: GraphCompiler) -> None:
        """Runs every later add of all envs in lockstep (``_store``: all of an add but the checks,
        the host's counts, the lost transitions and the sum-tree) as the function
        ``compile_graph(function, bound)`` returns, called with the step's tensors after the
        buffer's storage ``bound``: one compiled graph (``agents.traced_graphs.TracedGraphs``,
        which ``--compile`` uses on the CPU) in place of some fifteen small ops. The graph
        computes the row from ``env_steps``, which lockstep adds keep equal across envs."""
        self._traced_store = compile_graph(self._store_in_lockstep, self._storage())

    def _storage(self) -> tuple[Tensor, ...]:
        """The tensors an add reads or writes, as ``_store_in_lockstep`` takes them."""
        return (*[getattr(self, name) for name in _STORED], *self.frames.storage())

    def _store_in_lockstep(self, *storage_and_step: Tensor) -> None:
        """``_store`` of all envs at their common row, on the tensors given in place of the
        buffer's own (``_storage``'s, then the step's): a function of its arguments alone, as
        ``trace_adds`` compiles it."""
        own, frames = len(_STORED), len(FrameStore.STORAGE)
        storage, step = storage_and_step[:own + frames], storage_and_step[own + frames:]
        with _replaced(self, _STORED, storage[:own]), _replaced(self.frames, FrameStore.STORAGE, storage[own:]):
            self._store(self.env_steps[:1] % self.rows, self._envs, slice(None), None, *step, traced=True)

    def cut_episodes(self) -> None:
        """The envs go on from fresh episodes, not from the last ``next_obs`` (a resumed run whose
        envs cannot be snapshotted). Every env's newest step becomes a truncation, so n-step
        windows stop there and bootstrap from its stored final observation, and the next add
        stores its observation whole instead of taking it for the last ``next_obs``."""
        newest = (self.env_steps - 1) % self.rows
        self.truncated[newest, self._envs] |= self.env_steps > 0
        self.episode_start.fill_(True)

    def _may_lose_transitions(self) -> bool:
        """Whether an add can lose transitions yet: only once a row could be reused, or once the
        frames written (at most K + 1 per step) could exceed the frame ring."""
        return (self._steps_bound > self.rows
                or self._steps_bound * (self.frames.stack + 1) > self.frames.num_frames)

    def _drop_lost_transitions(self, envs: Tensor, of_envs: Tensor | slice) -> Tensor:
        """Advance ``valid_from`` of ``envs`` past transitions whose row was reused or whose first
        frame was overwritten; returns the probed steps ``[B, K + 2]`` lost in this add (-1 else).

        A step adds at most K + 1 frames, and transitions own distinct frames in order, so at
        most K + 1 transitions per env are lost per add, all at the front of its range."""
        steps = self.env_steps[of_envs]
        valid_from = self.valid_from[of_envs].clamp(min=steps - self.rows)
        probe = valid_from[:, None] + self._lost_probe
        newest_frame = self.obs_pos[probe % self.rows, envs[:, None]]
        first_frame = newest_frame - (self.frames.stack - 1)
        lost = (probe < steps[:, None]) & (first_frame < self.frames.oldest_kept(of_envs)[:, None])
        self.valid_from[of_envs] = valid_from + lost.sum(1)
        return torch.where(lost, probe, -1)

    def _enter_tree(self, envs: Tensor, new_slots: Tensor, lost: Tensor | None) -> None:
        """Zero the new slots (not sampleable yet) and lost transitions (None: none lost); let
        each step whose window just completed in at the max priority."""
        n = self.num_envs
        ready = self.env_steps[envs] - 1 - self.n_step
        # An env with no completed window yet zeroes its new slot a second time instead.
        ready_slots = torch.where(ready >= 0, (ready % self.rows) * n + envs, new_slots)
        ready_values = self.max_priority[envs // self.group_size] * (ready >= self.valid_from[envs])
        slots, values = [new_slots, ready_slots], [torch.zeros_like(ready_values), ready_values]
        if lost is not None:
            # Lost transitions at or after ``ready`` never had mass; probes that lost nothing point
            # at the new slot, zeroed anyway, so no slot gets two different values in one update.
            lost_before_ready = (lost >= 0) & (lost < ready[:, None])
            lost_slots = torch.where(lost_before_ready, (lost % self.rows) * n + envs[:, None], new_slots[:, None])
            slots.append(lost_slots.reshape(-1))
            values.append(torch.zeros(lost_slots.numel(), dtype=torch.float64, device=self.device))
        self.tree.update(torch.cat(slots), torch.cat(values))

    # --------------------------------------------------------------------------- sampling

    def surely_sampleable(self) -> bool:
        """Whether ``sample`` surely finds a transition, known on the host: more than n steps per
        env on average were added. (Some may be sampleable before.)"""
        return self.added > self.n_step * self.num_envs

    def _sampleable_counts(self) -> Tensor:
        return (self.env_steps - self.n_step - self.valid_from).clamp(min=0)

    def sample(self, batch_size: int, beta: float = 0.4,
               generator: torch.Generator | None = None) -> Batch:
        """``batch_size`` transitions; uniform, or proportional to priority with importance
        weights ``(M * P(i))^-beta / max_j (M * P(j))^-beta`` over the M sampleable ones
        (Schaul et al. 2016, sec. 3.4)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        counts = self._sampleable_counts()
        self._check_sampleable(counts)
        if self.tree is None:
            draws = torch.rand(batch_size, generator=generator, dtype=torch.float64, device=self.device)
            step, env = self._uniform_draws(counts, draws[None])
            weights = torch.ones(batch_size, dtype=torch.float32, device=self.device)
        else:
            slot = self.tree.sample(batch_size, generator).to(self.device)
            env, row = slot % self.num_envs, slot // self.num_envs
            newest = self.env_steps[env] - 1
            step = newest - (newest - row) % self.rows
            probs = self.tree.get(slot) / self.tree.total
            scaled = (counts.sum() * probs) ** -beta
            weights = (scaled / scaled.max()).float()
        return self._gather(step, env, weights)

    def _check_sampleable(self, counts: Tensor, groups: int = 1) -> None:
        """Raises unless each of the ``groups`` equal groups of envs has a sampleable transition.
        More than n steps per env on average guarantee one; below that (only early on) the
        device is asked."""
        if not self.surely_sampleable() and not bool(counts.view(groups, -1).any(1).all()):
            raise ValueError(f"cannot sample: nothing sampleable in {self.added} transitions added; an env's "
                             f"first transition is sampleable after {self.n_step + 1} of its steps")

    def _uniform_draws(self, counts: Tensor, draws: Tensor) -> tuple[Tensor, Tensor]:
        """Maps uniform ``draws`` in [0, 1) ``[G, B]`` to sampleable transitions (``counts`` per
        env), uniformly over those of each group of envs (the envs split into G equal groups, in
        order; G = 1: all): their steps and envs, ``[G * B]`` each, group by group."""
        groups = draws.shape[0]
        counts = counts.view(groups, -1)
        ends = counts.cumsum(1)
        flat = (draws * ends[:, -1:]).long().clamp(max=ends[:, -1:] - 1)
        env = torch.searchsorted(ends, flat, right=True)
        step = self.valid_from.view(groups, -1).gather(1, env) + flat - (ends - counts).gather(1, env)
        env = env + torch.arange(groups, device=self.device).unsqueeze(1) * counts.shape[1]
        return step.flatten(), env.flatten()

    def _gather(self, step: Tensor, env: Tensor, weights: Tensor) -> Batch:
        rows = (step[:, None] + self._window) % self.rows
        envs = env[:, None]
        window = n_step_window(self.reward[rows, envs], self.terminated[rows, envs],
                               self.truncated[rows, envs], self.gamma)
        last_row = (step + window.length - 1) % self.rows
        after_row = (step + window.length) % self.rows
        next_action = self.action[after_row, env]
        if not next_action.is_floating_point():
            # No action is ever taken at a truncated episode's final observation: mark it -1.
            truncated_end = self.truncated[last_row, env].view(-1, *([1] * (next_action.dim() - 1)))
            next_action = torch.where(truncated_end, torch.full_like(next_action, -1), next_action)
        return Batch(obs=self.frames.stacks(env, self.obs_pos[step % self.rows, env]),
                     action=self.action[step % self.rows, env],
                     reward=window.reward,
                     next_obs=self.frames.stacks(env, self.obs_pos[last_row, env] + 1),
                     terminated=window.terminated, discount=window.discount, reward_steps=window.length,
                     weights=weights,
                     indices=step * self.num_envs + env,
                     next_action=next_action)

    def update_priorities(self, indices: Tensor, priorities: Tensor) -> None:
        """Store ``(|p| + eps)^alpha`` for the sampled ``indices`` (from ``Batch.indices``).

        Transitions that stopped being sampleable since they were drawn (overwritten or dropped)
        keep their zero mass; no-op under uniform sampling."""
        if self.tree is None:
            return
        indices = indices.to(self.device).flatten()
        step, env = indices // self.num_envs, indices % self.num_envs
        valid = (step >= self.valid_from[env]) & (step <= self.env_steps[env] - 1 - self.n_step)
        slot = (step % self.rows) * self.num_envs + env
        new = (priorities.detach().to(self.device, torch.float64).flatten().abs() + self.priority_eps) ** self.alpha
        self.max_priority = self.max_priority.scatter_reduce(0, env // self.group_size, torch.where(valid, new, 0.0),
                                                             "amax")
        self.tree.update(slot, torch.where(valid, new, self.tree.get(slot)))

    # ------------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        state = {"added": self.added, "frames": self.frames.state_dict(),
                 "max_priority": self.max_priority.clone()}
        for name in ("obs_pos", "action", "reward", "terminated", "truncated", "valid_from",
                     "episode_start", "env_steps"):
            state[name] = getattr(self, name).clone()
        if self.tree is not None:
            state["tree"] = self.tree.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if ("tree" in state) != (self.tree is not None):
            raise ValueError("checkpoint and buffer disagree on prioritized sampling")
        if state["obs_pos"].shape != self.obs_pos.shape:
            raise ValueError(f"checkpoint holds {list(state['obs_pos'].shape)} rows x envs, "
                             f"this buffer {list(self.obs_pos.shape)}")
        self.frames.load_state_dict(state["frames"])
        for name in ("obs_pos", "action", "reward", "terminated", "truncated"):
            getattr(self, name).copy_(state[name])
        for name in ("valid_from", "episode_start", "env_steps"):  # in place: a traced add holds them
            getattr(self, name).copy_(state[name])
        self.max_priority = state["max_priority"].to(self.device).reshape(self.num_groups).clone()
        self.added = int(state["added"])
        self._steps_bound = int(self.env_steps.max())
        in_lockstep = bool((self.env_steps == self.env_steps[0]).all())
        self._lockstep_steps = int(self.env_steps[0]) if in_lockstep else None
        if self.tree is not None:
            self.tree.load_state_dict(state["tree"])
