"""The experiment grid of a comparison: agents x environments x seeds -> one run task each.

Settings reach every run in this order (later wins): the agent's dataclass defaults, the
published preset for the environment (``agents.presets``), the grid's thread count, global
``--set key=value`` overrides, per-agent ``--set agent.key=value`` overrides, then the settings
of a named variant (``agents.comparison.variants``). Every key and every resulting config is
checked here, before anything trains, so a typo costs no compute.

Each task runs in its own ordinary run folder ``OUT/runs/<env>__<name>__seed<k>/``, where the
name is the agent's, or the variant's. Planning sorts the tasks by what is on disk: a folder
with ``summary.json`` (and, for a variant, the variant's name recorded in ``config.json``) is
finished and skipped unless it reports fewer steps than ``--steps`` asks for now; an unfinished
one with ``checkpoint.pt`` (which every run also writes at its end) is resumed by the worker to
the budget, anything else starts fresh. An agent that cannot be built for an environment (DQN
on continuous actions) is listed, not run.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.comparison.runs import VARIANT_KEY
from agents.config import CHANGEABLE_ON_RESUME
from agents.presets import resolve_config
from agents.registry import AGENTS, agent_class
from agents.runner import CHECKPOINT
from envs import env_file_name

if TYPE_CHECKING:
    from agents.comparison.variants import Variant

RESERVED_KEYS = ("env", "seed")  # set by the grid itself: --envs, --seeds
EXPERIMENT_KEYS = ("agents", "variants", "envs", "seeds", "steps", "set", "out", "workers", "backend",
                   "address", "gpus_per_run", "cpus_per_run", "seeds_per_process")


@dataclass(frozen=True)
class RunTask:
    """One (agent, env, seed) run: everything a worker process needs, all picklable."""

    agent: str
    env: str
    seed: int
    run_dir: str
    settings: dict[str, Any]     # the fully resolved config, as ``config.to_dict()``
    return_files: bool = False   # send config/metrics/summary back (cluster without shared storage)
    variant: str | None = None   # the named variant this run belongs to; None for a plain agent

    @property
    def name(self) -> str:
        """The run's column in the report: the variant's name, else the agent's."""
        return self.variant or self.agent

    @property
    def label(self) -> str:
        return f"{self.name} {self.env} seed {self.seed}"


@dataclass(frozen=True)
class Overrides:
    """``--set`` values: ``common`` for every agent, ``per_agent[name]`` for one agent."""

    common: dict[str, Any] = field(default_factory=dict)
    per_agent: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """What a grid means on disk: runs to start or resume, runs already finished, pairs skipped."""

    tasks: list[RunTask]                  # to run, new ones and ones resumed from checkpoint.pt
    finished: list[RunTask]               # summary.json exists: skipped
    incompatible: list[tuple[str, str, str]]  # (agent, env, reason) pairs that cannot run

    @property
    def resumed(self) -> list[RunTask]:
        return [task for task in self.tasks if (Path(task.run_dir) / CHECKPOINT).is_file()]


def parse_value(text: str) -> Any:
    """JSON when the text is JSON (numbers, booleans, lists, objects), else the string itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_seeds(value: int | str | list[int]) -> list[int]:
    """``5`` -> seeds 0..4; ``"3,7"`` or ``[3, 7]`` -> exactly those seeds."""
    if isinstance(value, str) and "," not in value:
        value = int(value) if value.strip().isdigit() else value
    if isinstance(value, bool):
        raise ValueError(f"seeds must be a count or a list of seeds, got {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"the number of seeds must be at least 1, got {value}")
        return list(range(value))
    items = value.split(",") if isinstance(value, str) else list(value)
    try:
        seeds = [int(item) for item in items if str(item).strip()]
    except (TypeError, ValueError):
        raise ValueError(f"seeds must be a count or a list of integers, got {value!r}") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"seeds must be distinct non-negative integers, got {value!r}")
    return seeds


def parse_names(value: str | list[str], what: str) -> list[str]:
    """``"a,b"`` or ``["a", "b"]`` -> ``["a", "b"]``, rejecting empty lists and repeats."""
    names = [name.strip() for name in (value.split(",") if isinstance(value, str) else value)]
    names = [name for name in names if name]
    if not names:
        raise ValueError(f"no {what} given")
    if len(set(names)) != len(names):
        raise ValueError(f"{what} listed twice: {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
    return names


def _field_types(agent: str) -> dict[str, str]:
    fields = dataclasses.fields(agent_class(agent).config_class)
    return {f.name: f.type if isinstance(f.type, str) else f.type.__name__ for f in fields}


def _coerce(value: Any, text: str, kind: str, where: str) -> Any:
    """``value`` (parsed from ``text``) as the field's type: JSON ``1e4`` is a float but
    ``eval_every`` wants an int, and a string setting keeps its text even when it looks like JSON."""
    if kind == "str" and not isinstance(value, str):
        return text
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    expected = {"int": int, "float": float, "bool": bool, "str": str, "dict": dict}.get(kind, object)
    if not isinstance(value, expected) or (kind != "bool" and isinstance(value, bool)):
        raise ValueError(f"{where} expects {kind}, got {json.dumps(value)}")
    return value


def parse_setting(agent: str, name: str, text: str, where: str) -> Any:
    """One ``name=text`` setting of ``agent``, typed as its config field; ``where`` starts the
    error message. ValueError for a key the grid sets itself or the agent does not have."""
    if name in RESERVED_KEYS:
        raise ValueError(f"{where}: the grid sets '{name}' (use --{name}s)")
    kind = _field_types(agent).get(name)
    if kind is None:
        raise ValueError(f"{where}: unknown {agent} setting '{name}'")
    return _coerce(parse_value(text), text, kind, where)


def parse_overrides(assignments: list[str], agents: list[str]) -> Overrides:
    """``["eval_every=5000", "ppo.learning_rate=3e-4"]`` -> checked, typed overrides.

    A plain key must be a setting of every agent in the grid; ``agent.key`` one of that agent.
    """
    common: dict[str, Any] = {}
    per_agent: dict[str, dict[str, Any]] = {}
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects key=value or agent.key=value, got '{assignment}'")
        scope, dot, name = key.strip().rpartition(".")
        _check_key(scope if dot else None, name, agents)
        targets = [scope] if dot else agents
        value = parse_value(text)
        for agent in targets:
            value = _coerce(value, text, _field_types(agent)[name], f"--set {key.strip()}")
        (per_agent.setdefault(scope, {}) if dot else common)[name] = value
    return Overrides(common, per_agent)


def _check_key(scope: str | None, name: str, agents: list[str]) -> None:
    if scope is not None and scope not in agents:
        known = "" if scope in AGENTS else f" (agents: {', '.join(sorted(AGENTS))})"
        raise ValueError(f"--set {scope}.{name}: '{scope}' is not an agent of this grid{known}")
    if name in RESERVED_KEYS:
        raise ValueError(f"--set {name}: the grid sets '{name}' (use --{name}s)")
    for agent in [scope] if scope is not None else agents:
        if name not in _field_types(agent):
            hint = "" if scope is not None else " (prefix it with the agent that has it: agent.key=value)"
            raise ValueError(f"--set {name}: unknown {agent} setting '{name}'{hint}")


def overrides_from_table(table: dict[str, Any], agents: list[str]) -> list[str]:
    """An experiment file's ``set`` table (``[set]``, ``[set.ppo]``) as ``--set`` strings."""
    assignments = []
    for key, value in table.items():
        if key in agents or key in AGENTS:
            if not isinstance(value, dict):
                raise ValueError(f"set.{key} must be a table of {key} settings")
            assignments += [f"{key}.{name}={json.dumps(item)}" for name, item in value.items()]
        else:
            assignments.append(f"{key}={json.dumps(value)}")
    return assignments


def load_experiment_file(path: str | Path) -> dict[str, Any]:
    """The fields of a ``.toml`` (stdlib tomllib) or ``.yaml``/``.yml`` (PyYAML) experiment file:
    the long names of the command-line flags (``agents``, ``envs``, ``seeds``, ``steps``, ``set``,
    ``out``, ``workers``, ``backend``, ``address``, ``gpus_per_run``, ``cpus_per_run``,
    ``seeds_per_process``)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"experiment file {path} does not exist")
    if path.suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            raise ValueError(f"reading {path} needs Python 3.11 (tomllib), or use a .yaml file") from None
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{path} is not valid TOML: {error}") from None
    elif path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ValueError(f"reading {path} needs PyYAML (pip install pyyaml), or use a .toml file") from None
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            raise ValueError(f"{path} is not valid YAML: {' '.join(str(error).split())}") from None
    else:
        raise ValueError(f"experiment file {path} must end in .toml, .yaml or .yml")
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a table of experiment fields")
    unknown = sorted(set(data) - set(EXPERIMENT_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown field(s) {', '.join(unknown)} (known: {', '.join(EXPERIMENT_KEYS)})")
    return data


def run_name(name: str, env: str, seed: int) -> str:
    """The run folder's name; ``name`` is the agent's, or the variant's."""
    return f"{env_file_name(env)}__{name}__seed{seed}"


def is_finished(run_dir: Path, variant: str | None, steps: int) -> bool:
    """``summary.json`` exists, reports at least ``steps`` env steps (a grid run again with a
    larger ``--steps`` resumes its runs to the new budget) and, for a variant, ``config.json``
    records its name (the worker records it right after the run; a run stopped in between
    finishes again on resume)."""
    try:
        if json.loads((run_dir / "summary.json").read_text())["steps"] < steps:
            return False
        return variant is None or json.loads((run_dir / "config.json").read_text()).get(VARIANT_KEY) == variant
    except (OSError, ValueError, KeyError, TypeError):
        return False


def check_settings_match(run_dir: Path, settings: dict[str, Any]) -> None:
    """ValueError when ``run_dir`` holds a run begun with other settings than ``settings``
    (a config's ``to_dict``) in anything a resumed run cannot change: the grid would skip or
    resume it, and report results the settings asked for did not make."""
    try:
        recorded = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return  # no run begun there
    wanted = json.loads(json.dumps(settings))  # as config.json holds them (lists, not tuples)
    changed = [name for name, value in wanted.items()
               if name not in CHANGEABLE_ON_RESUME and name in recorded and recorded[name] != value]
    if changed:
        differences = ", ".join(f"{name}={recorded[name]!r} (now {wanted[name]!r})" for name in changed)
        raise ValueError(f"{run_dir} holds a run made with {differences}: give another --out for new settings")


def plan_grid(agents: list[str], envs: list[str], seeds: list[int], overrides: Overrides,
              runs_dir: str | Path, threads: int = 1, return_files: bool = False,
              variants: Sequence[Variant] = ()) -> Plan:
    """Resolves and checks every config of the grid, then sorts its runs by what is on disk.

    ``agents`` run with the settings above; each of ``variants`` is a column of its own, with
    its agent's settings and then its own on top.

    Raises ValueError (before anything runs) for an unknown agent or env, a name given twice,
    a ``runs_dir`` under a file, or a setting that fails its config's validation; a pair whose
    agent cannot be built for the env's spaces goes to ``Plan.incompatible`` with the agent's own
    message.
    """
    columns = [(agent, agent, {}, None) for agent in agents]
    columns += [(variant.name, variant.agent, variant.settings, variant.name) for variant in variants]
    names = [name for name, *_ in columns]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"agents or variants listed twice: {', '.join(repeated)}")
    runs_dir = Path(runs_dir).resolve()
    taken = next((folder for folder in (runs_dir, *runs_dir.parents) if folder.exists() and not folder.is_dir()), None)
    if taken is not None:
        raise ValueError(f"the runs cannot go under '{taken}': it is a file")
    tasks, finished, incompatible = [], [], []
    for name, agent, own_settings, variant in columns:
        agent_cls = agent_class(agent)
        for env in envs:
            settings = {"torch_threads": threads, **overrides.common, **overrides.per_agent.get(agent, {}),
                        **own_settings, "env": env}
            config = resolve_config(agent_cls, settings)
            config.validate()
            try:
                built = agent_cls.from_env(env, **config.to_dict()).config.to_dict()  # as its runs record it
            except ValueError as error:
                incompatible.append((name, env, str(error)))
                continue
            for seed in seeds:
                config.seed = seed
                run_dir = runs_dir / run_name(name, env, seed)
                check_settings_match(run_dir, {**built, "seed": seed})
                task = RunTask(agent, env, seed, str(run_dir), config.to_dict(), return_files, variant)
                (finished if is_finished(run_dir, variant, config.steps) else tasks).append(task)
    return Plan(tasks, finished, incompatible)
