"""Settings shared by every agent. Each field's ``help`` is its ``--flag`` help text."""
from __future__ import annotations

import dataclasses
import numbers
import typing
from dataclasses import dataclass, field
from typing import Any

import torch

from agents.compilation import COMPILE_MODES


def option(default: Any, help: str, **metadata: Any) -> Any:
    """A config field with its command-line help; mutable defaults are copied per instance."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **metadata})
    return field(default=default, metadata={"help": help, **metadata})


# Seeds reach numpy and Gymnasium, which take 0 .. 2**32 - 1; evaluation envs add an offset.
MAX_SEED = 2**31 - 1

# What a resumed run may change: its budget, the device, and how it is evaluated, logged and saved.
CHANGEABLE_ON_RESUME = ("steps", "device", "eval_every", "eval_episodes", "log_every", "checkpoint_every",
                        "capture_video", "torch_threads")


def check_device(name: str) -> None:
    """ValueError unless ``name`` is a device of this machine that reprl runs on (cpu, cuda[:i], mps)."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be cpu, cuda, cuda:N or mps, got '{name}'") from None
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if count == 0:
            raise ValueError(f"device '{name}': this machine has no CUDA device (or this torch build no CUDA)")
        if device.index is not None and device.index >= count:
            raise ValueError(f"device '{name}': this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device '{name}': MPS is not available on this machine")
    elif device.type != "cpu":
        raise ValueError(f"device must be cpu, cuda, cuda:N or mps, got '{name}'")


def check_kind(name: str, value: Any, kind: type) -> None:
    """ValueError unless ``value`` suits a setting of type ``kind`` (bool, int, float, str or dict;
    numpy's numbers count, an int is a float, a bool is no number): the command line parses its
    flags, Python callers of ``from_env`` pass values as they are."""
    number = {int: numbers.Integral, float: numbers.Real}.get(kind)
    suits = (isinstance(value, number) and not isinstance(value, bool) if number is not None
             else isinstance(value, kind))
    if not suits:
        raise ValueError(f"{name} must be {'a' if kind is not int else 'an'} {kind.__name__}, got {value!r}")


@dataclass
class AgentConfig:
    env: str = option("CartPole-v1", "Gymnasium id or Atari game (ALE/Pong-v5, PongNoFrameskip-v4, Pong); "
                                     "module:EnvId imports module first")
    steps: int = option(100_000, "total environment steps to train for (summed over envs)")
    num_envs: int = option(8, "environments stepped together")
    seed: int = option(1, "seed for the networks, exploration and environments", bounds=(0, MAX_SEED))
    device: str = option("cpu", "torch device for environments' tensors, networks and buffers (cpu, cuda, cuda:1)")
    preset: str = option("auto", "hyperparameter preset: 'auto' picks the env family's published values; 'none' keeps "
                         "the defaults; named ones: rainbow (dqn), parallel (ppo on thousands of torch-native envs), "
                         "an env id or family (classic, atari, pixels, box)")
    encoder: str = option("auto", "observation encoder: mlp, nature, impala, ... ('auto': nature for images, mlp otherwise)")
    encoder_options: dict = option({}, 'encoder constructor options as JSON, e.g. \'{"hidden_sizes": [64, 64]}\'')
    encoder_checkpoint: str = option("", "encoder to start from: a file of scripts/pretrain.py, or an agent file or "
                                   "run checkpoint whose encoder is taken")
    freeze_encoder: bool = option(False, "keep the encoder's weights fixed (heads still train)")
    aux: str = option("none", "auxiliary representation objectives on the agent's encoder, comma-separated: curl, deepmdp, dbc")
    aux_coef: float = option(1.0, "weight of the auxiliary losses", bounds=(0.0, float("inf")))
    aux_mode: str = option("joint", "joint: added to the agent's loss; separate: own optimiser step every --aux-every updates",
                           choices=("joint", "separate"))
    aux_every: int = option(1, "updates between auxiliary steps in separate mode", positive=True)
    aux_options: dict = option({}, 'options of the auxiliary objectives as JSON, e.g. \'{"curl": {"tau": 0.05}}\'')
    env_options: dict = option({}, 'options for make_env as JSON, e.g. \'{"episodic_life": true}\' for Atari')
    vectorization: str = option("sync", "gymnasium vector mode for non-Atari envs: sync or async")
    env_batch_size: int = option(0, "Atari with a replay agent (dqn, sac): step the envs asynchronously, acting on "
                                 "and learning from the first this-many ready while ale-py's threads step the "
                                 "others (0: all envs in lockstep)", bounds=(0, 10**6))
    backend: str = option("auto", "environment implementation: auto, gymnasium or torch (torch-native classic control)")
    normalize_obs: bool = option(False, "standardise observations with running statistics")
    normalize_reward: bool = option(False, "scale rewards by the running std of the discounted return")
    eval_every: int = option(25_000, "evaluate the greedy policy every this many steps (0: only at the end)")
    eval_episodes: int = option(10, "episodes per evaluation, run in parallel envs")
    log_every: int = option(2_000, "write metrics every this many steps")
    checkpoint_every: int = option(50_000, "write checkpoint.pt every this many steps (0: only at the end)")
    capture_video: bool = option(False, "save the evaluation episodes as GIF files under RUN_DIR/videos (torch-native "
                                 "runs are then evaluated on gymnasium's envs, which draw frames)")
    torch_threads: int = option(0, "torch intra-op threads (0: torch's default)")
    compile: bool = option(False, "compile the agent's losses with inductor (PPO and DQN on any device, A2C and SAC "
                           "on the CPU: whole gradient steps and acting; a torch-native env's step; with CUDA "
                           "graphs: the other agents' per-step network calls); compiling takes seconds at the "
                           "start (see agents/compilation.py)")
    compile_mode: str = option("auto", "torch.compile mode; auto: reduce-overhead (CUDA graphs where TorchDynamo "
                               "captures the graph) on CUDA, default elsewhere", choices=COMPILE_MODES)

    def validate(self) -> None:
        """Raises ValueError naming the first setting that makes no sense."""
        kinds = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            check_kind(f.name, getattr(self, f.name), kinds[f.name])
        for name in ("steps", "num_envs", "eval_episodes", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("eval_every", "checkpoint_every", "torch_threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        check_device(self.device)
        if self.vectorization not in ("sync", "async"):
            raise ValueError(f"vectorization must be sync or async, got '{self.vectorization}'")
        if self.env_batch_size:
            self._validate_env_batch_size()
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            bounds = f.metadata.get("bounds")  # inclusive, or [low, high) with upper_open
            if bounds is not None:
                low, high = bounds
                upper_open = f.metadata.get("upper_open", False)
                if not (low <= value and (value < high if upper_open else value <= high)):
                    raise ValueError(f"{f.name} must be in [{low}, {high}{')' if upper_open else ']'}, got {value}")
            if f.metadata.get("positive") and not value > 0:
                raise ValueError(f"{f.name} must be positive, got {value}")
            choices = f.metadata.get("choices")
            if choices is not None and value not in choices:
                raise ValueError(f"{f.name} must be one of {', '.join(map(str, choices))}, got '{value}'")

    def first_update(self) -> tuple[int, str]:
        """The env steps (summed over envs) after which the first update has run, and the settings
        that set them, for a warning when ``steps`` ends before it; 0 where updates run from the
        start or their start cannot be told in advance."""
        return 0, ""

    def _validate_env_batch_size(self) -> None:
        from envs import is_atari

        if not is_atari(self.env):
            raise ValueError(f"env_batch_size needs an Atari env (ale-py's asynchronous mode), not '{self.env}'")
        if self.env_batch_size >= self.num_envs:
            raise ValueError(f"env_batch_size must be below num_envs ({self.num_envs}), got {self.env_batch_size}")
        if self.normalize_reward:
            raise ValueError("env_batch_size does not combine with normalize_reward (per-env returns in lockstep)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "AgentConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} setting(s): {', '.join(unknown)}")
        return cls(**values)


def steps_run(config: AgentConfig, steps: int) -> int:
    """The env steps a run takes to pass ``steps``: whole vector steps of ``num_envs`` envs (of
    ``env_batch_size`` with asynchronous envs)."""
    per_step = config.env_batch_size or config.num_envs
    return -(-steps // per_step) * per_step


def replay_first_update(config: AgentConfig) -> tuple[int, str]:
    """``first_update`` of a replay agent, which trains once ``train_frequency`` steps have come
    after ``learning_starts`` and after its buffer surely holds a sampleable transition (more than
    ``n_step`` per env: exact in lockstep, early for asynchronous envs, whose buffer fills slower)."""
    learning_from = max(steps_run(config, config.learning_starts + 1),
                        steps_run(config, config.n_step * config.num_envs + 1))
    return (learning_from + steps_run(config, config.train_frequency) - steps_run(config, 1),
            f"--learning-starts {config.learning_starts}, then --train-frequency {config.train_frequency}")


def nothing_learned_warning(config: AgentConfig) -> str | None:
    """A line saying that a run of ``config.steps`` steps would end before its first update."""
    first, why = config.first_update()
    if steps_run(config, config.steps) >= first:
        return None
    return (f"--steps {config.steps} ends before the first update, at step {first} ({why}): "
            f"this run will train nothing")
