"""Snapshots of a single gymnasium env's state as plain tensors and numbers.

Used to resume classic-control and toy-text runs bit for bit. Only plain values are captured
(numbers, strings, booleans, None, numpy scalars with their dtype, lists, tuples and deques of
these, numeric numpy arrays as tensors, the numpy RNG's state, and envs held as attributes, such
as the CartPole inside ``reprl/DistractorCartPole-v0``), layer by layer down the wrapper chain,
so a checkpoint holding them loads with ``torch.load(weights_only=True)``. Environments whose
state lives in native code (MuJoCo, ALE) are not covered: they resume with fresh episodes.
"""
from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np
import torch

_PLAIN = (bool, int, float, str, type(None))


def _layers(env: gym.Env) -> list[Any]:
    layers = [env]
    while isinstance(layers[-1], gym.Wrapper):
        layers.append(layers[-1].env)
    return layers


def _capture(value: Any) -> Any:
    if isinstance(value, np.generic):  # first: numpy's float64 and str_ are also float and str
        return {"__scalar__": value.item(), "dtype": str(value.dtype)} if value.dtype.kind in "biufc" else str(value)
    if isinstance(value, _PLAIN):  # an IntEnum or other subclass is kept as its plain value
        if type(value) in _PLAIN:
            return value
        return next(base(value) for base in (int, float, str) if isinstance(value, base))
    if isinstance(value, (list, tuple, deque)):  # e.g. Blackjack's hands, a stack of frames
        items = [_capture(item) for item in value]
        if any(item is _SKIP for item in items):
            return _SKIP
        if isinstance(value, deque):
            return {"__deque__": items, "maxlen": value.maxlen}
        return items if isinstance(value, list) else {"__tuple__": items}
    if isinstance(value, gym.Env):
        return {"__env__": get_env_state(value)}
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufc":  # numbers only; maps etc. never change
        return {"__ndarray__": torch.from_numpy(value.copy()), "dtype": str(value.dtype)}
    if isinstance(value, np.random.Generator):
        return {"__rng__": value.bit_generator.state}
    return _SKIP


_SKIP = object()


def _restore(value: Any, current: Any) -> Any:
    if isinstance(value, list):
        return [_restore(item, None) for item in value]
    if isinstance(value, dict) and "__tuple__" in value:
        return tuple(_restore(item, None) for item in value["__tuple__"])
    if isinstance(value, dict) and "__deque__" in value:
        return deque((_restore(item, None) for item in value["__deque__"]), maxlen=value["maxlen"])
    if isinstance(value, dict) and "__env__" in value:
        set_env_state(current, value["__env__"])
        return current
    if isinstance(value, dict) and "__scalar__" in value:
        return np.dtype(value["dtype"]).type(value["__scalar__"])
    if isinstance(value, dict) and "__ndarray__" in value:
        return value["__ndarray__"].numpy().astype(value["dtype"])
    if isinstance(value, dict) and "__rng__" in value:
        current.bit_generator.state = value["__rng__"]
        return current
    return value


def get_env_state(env: gym.Env) -> list[dict[str, Any]]:
    state = []
    for layer in _layers(env):
        inner = layer.env if isinstance(layer, gym.Wrapper) else None  # the next layer, captured as such
        captured = {name: _capture(value) for name, value in vars(layer).items() if value is not inner}
        state.append({name: value for name, value in captured.items() if value is not _SKIP})
    return state


def set_env_state(env: gym.Env, state: list[dict[str, Any]]) -> None:
    for layer, layer_state in zip(_layers(env), state):
        for name, value in layer_state.items():
            setattr(layer, name, _restore(value, getattr(layer, name, None)))
