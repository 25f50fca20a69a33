"""``make_env``: any Gymnasium id or Atari game as a batched, device-resident ``VecEnv``."""
from __future__ import annotations

import difflib
import importlib
from typing import Any

import gymnasium as gym
import torch

from envs.atari import AtariVecEnv, atari_game_name
from envs.vec_env import VecEnv

BACKENDS = ("auto", "gymnasium", "torch")
# The probability of repeating the previous action that Gymnasium's ALE/*-v5 envs default to.
V5_STICKY_ACTIONS = 0.25
# AtariVecEnv's settings that env options may give (the others come from make_env's own arguments)
ATARI_OPTIONS = ("episodic_life", "sticky_actions", "noop_max", "frame_skip", "frame_stack", "max_episode_frames",
                 "full_action_space", "num_threads")


def is_atari(env_id: str) -> bool:
    return atari_game_name(env_id) is not None


def check_env_id(env_id: str) -> None:
    """Raises ValueError unless ``env_id`` names an Atari game or a registered Gymnasium env.
    ``module:EnvId``, Gymnasium's form for an env of one's own, first imports ``module``, whose
    import registers ``EnvId`` (``gym.make`` and ``gym.make_vec`` take the same form)."""
    name = import_env_module(env_id)
    if is_atari(name) or name in gym.registry:
        return
    close = difflib.get_close_matches(name, list(gym.registry), n=3, cutoff=0.75)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    where = f"'{env_id.partition(':')[0]}' registered no '{name}'" if name != env_id else \
        "not a registered Gymnasium id nor an Atari game"
    raise ValueError(f"unknown environment id '{env_id}': {where}{hint}")


def import_env_module(env_id: str) -> str:
    """``env_id``'s registry name: ``EnvId`` for ``module:EnvId`` once ``module`` is imported."""
    module, colon, name = env_id.partition(":")
    if not colon:
        return env_id
    try:
        importlib.import_module(module)
    except Exception as error:  # the user's module: any error in it is theirs to see, in one line
        raise ValueError(f"environment id '{env_id}': importing '{module}' failed: {error} (a module of "
                         f"your own must be installed or on PYTHONPATH)") from None
    return name


def env_file_name(env_id: str) -> str:
    """``env_id`` as a folder name: ``ALE/Pong-v5`` -> ``ALE_Pong-v5``, ``module:EnvId`` -> ``module_EnvId``."""
    return env_id.replace("/", "_").replace(":", "_")


def missing_dependency(env_id: str, error: Exception) -> ValueError:
    """The one-line error for a Gymnasium env whose extra (Box2D, MuJoCo, ...) is not installed."""
    return ValueError(f"'{env_id}' needs a package that is not installed: {error}")


def make_env(env_id: str, num_envs: int = 1, *, seed: int | list[int] = 0, device: str | torch.device = "cpu",
             backend: str = "auto", vectorization: str = "sync", clip_rewards: bool = True,
             render_mode: str | None = None, **env_kwargs: Any) -> VecEnv:
    """Builds ``num_envs`` copies of ``env_id`` stepping together on ``device``.

    Atari ids (``ALE/Pong-v5``, ``PongNoFrameskip-v4``, ``Pong``) go through ale-py's C++ vector
    env with DQN preprocessing; ``env_kwargs`` then take ``episodic_life``, ``sticky_actions``,
    ``noop_max``, ``frame_skip``, ``frame_stack``. ``sticky_actions`` defaults to 0.25 for the
    ``-v5`` ids, as Gymnasium's v5 envs and Machado et al. (2018) have it, and to 0 otherwise. With ``clip_rewards`` the agent sees reward
    signs while ``info["episode_return"]`` keeps the game score. Classic-control ids have
    torch-native versions (``backend="torch"``, chosen automatically on a GPU). Anything else
    goes through ``gym.make_vec`` (``vectorization="sync"`` or ``"async"``), ``env_kwargs``
    passed to the env's constructor. A list of K seeds splits a torch-native env into K seed
    groups (``envs.torch_envs.base``), one per seed.
    """
    from wrappers.episode_stats import EpisodeStatistics
    from wrappers.gym_vec import GymVecEnv

    if not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive integer, got {num_envs}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got '{backend}'")
    check_env_id(env_id)
    device = torch.device(device)
    game = atari_game_name(env_id)
    if backend == "torch" or (backend == "auto" and device.type == "cuda" and render_mode is None):
        from envs.torch_envs import TORCH_ENVS, make_torch_env

        if backend == "torch" or env_id in TORCH_ENVS:
            return make_torch_env(env_id, num_envs, seed=seed, device=device, **env_kwargs)
    if not isinstance(seed, int):
        raise ValueError(f"a list of seeds (one per seed group) needs a torch-native env; '{env_id}' "
                         f"runs on the {'ale-py' if game else 'gymnasium'} backend")
    if game is not None:
        if env_id.endswith("-v5"):
            env_kwargs = {"sticky_actions": V5_STICKY_ACTIONS, **env_kwargs}
        try:
            return AtariVecEnv(game, num_envs, seed=seed, device=device, clip_rewards=clip_rewards, **env_kwargs)
        except TypeError as error:
            raise ValueError(f"bad options {env_kwargs} for '{env_id}': {error} (Atari takes "
                             f"{', '.join(ATARI_OPTIONS)})") from None
    try:
        env = GymVecEnv(env_id, num_envs, seed=seed, device=device, vectorization=vectorization,
                        render_mode=render_mode, **env_kwargs)
    except TypeError as error:
        raise ValueError(f"bad options {env_kwargs} for '{env_id}': {error}") from None
    except gym.error.DependencyNotInstalled as error:
        raise missing_dependency(env_id, error) from None
    return EpisodeStatistics(env)
