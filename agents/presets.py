"""Published tuned hyperparameters, per agent and environment family.

Sources: rl-baselines3-zoo's tuned ``hyperparams/*.yml`` (classic control, Pendulum) and
CleanRL's Atari scripts (``ppo_atari.py``, ``dqn_atari.py``), which follow Mnih et al. 2015 and
Schulman et al. 2017. Order of precedence: dataclass defaults < preset < explicit settings.
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym

from envs import is_atari

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "ppo": {
        "classic": dict(num_envs=8, num_steps=32, num_minibatches=1, update_epochs=20, gamma=0.98,
                        gae_lambda=0.8, ent_coef=0.0, learning_rate=1e-3, anneal_lr=True, clip_coef=0.2,
                        anneal_clip=True, clip_vloss=False, shared_encoder=False,
                        torch_threads=1, encoder_options={"hidden_sizes": [64, 64], "activation": "tanh"}),
        "atari": dict(num_envs=8, num_steps=128, num_minibatches=4, update_epochs=4, gamma=0.99, gae_lambda=0.95,
                      ent_coef=0.01, learning_rate=2.5e-4, anneal_lr=True, clip_coef=0.1, anneal_clip=False,
                      clip_vloss=True, shared_encoder=True, encoder="nature", eval_every=100_000,
                      checkpoint_every=100_000, log_every=10_000, env_options={"episodic_life": True}),
        "box": dict(num_envs=1, num_steps=2048, num_minibatches=32, update_epochs=10, gamma=0.99, gae_lambda=0.95,
                    ent_coef=0.0, learning_rate=3e-4, anneal_lr=True, clip_coef=0.2, clip_vloss=True,
                    shared_encoder=False, normalize_obs=True, normalize_reward=True, torch_threads=1,
                    encoder_options={"hidden_sizes": [64, 64], "activation": "tanh"}),
        "Pendulum-v1": dict(num_envs=4, num_steps=1024, num_minibatches=64, update_epochs=10, gamma=0.9,
                            gae_lambda=0.95, ent_coef=0.0, learning_rate=1e-3, anneal_lr=True, clip_coef=0.2,
                            clip_vloss=False, shared_encoder=False, normalize_obs=False, normalize_reward=False,
                            torch_threads=1,
                            encoder_options={"hidden_sizes": [64, 64], "activation": "tanh"}),
    },
    "dqn": {
        "classic": dict(num_envs=1, learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1_000,
                        gamma=0.99, target_update_interval=10, train_frequency=256, gradient_steps=128,
                        exploration_fraction=0.16, start_e=1.0, end_e=0.04, max_grad_norm=10.0, torch_threads=1,
                        encoder_options={"hidden_sizes": [256, 256], "activation": "relu"}),
        "atari": dict(num_envs=1, learning_rate=1e-4, batch_size=32, buffer_size=1_000_000, learning_starts=80_000,
                      gamma=0.99, target_update_interval=1_000, train_frequency=4, gradient_steps=1,
                      exploration_fraction=0.1, start_e=1.0, end_e=0.01, encoder="nature", eval_every=250_000,
                      checkpoint_every=250_000, log_every=10_000, env_options={"episodic_life": True}),
    },
}


def env_family(env_id: str) -> str:
    """``atari``, ``box`` (continuous actions) or ``classic`` (discrete actions, vector obs)."""
    if is_atari(env_id):
        return "atari"
    env = gym.make(env_id)
    try:
        return "box" if isinstance(env.action_space, gym.spaces.Box) else "classic"
    finally:
        env.close()


def preset_values(agent: str, env_id: str, preset: str) -> dict[str, Any]:
    table = PRESETS.get(agent, {})
    if preset == "none":
        return {}
    if preset == "auto":
        return dict(table.get(env_id) or table.get(env_family(env_id), {}))
    if preset not in table:
        raise ValueError(f"unknown preset '{preset}' for {agent} (choose from auto, none, {', '.join(table)})")
    return dict(table[preset])


def resolve_config(agent_cls, settings: dict[str, Any]):
    """``agent_cls.config_class`` from its defaults, the preset, then ``settings``."""
    from envs import check_env_id

    defaults = agent_cls.config_class()
    env_id = settings.get("env", defaults.env)
    check_env_id(env_id)
    values = preset_values(agent_cls.name, env_id, settings.get("preset", defaults.preset))
    if settings.get("encoder", "auto") != values.get("encoder", "auto"):
        values.pop("encoder_options", None)  # the preset's options are for the preset's encoder
    values.update(settings)
    return agent_cls.config_class.from_dict(values)
