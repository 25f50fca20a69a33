"""``first_update``: the step a run's first update comes at, checked against runs that stop one
vector step before it and at it; a run that would train nothing says so."""
import sys
import warnings
from pathlib import Path

import pytest
import torch

from agents import A2C, DQN, PPO, REINFORCE, SAC
from agents.config import nothing_learned_warning

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import train  # noqa: E402

CASES = {  # agent, env, settings, the first update's step
    "ppo": (PPO, "CartPole-v1", dict(num_envs=3, num_steps=5, num_minibatches=1, update_epochs=1), 15),
    "a2c": (A2C, "CartPole-v1", dict(num_envs=3, num_steps=5), 15),
    "dqn": (DQN, "CartPole-v1", dict(num_envs=3, learning_starts=10, train_frequency=7, batch_size=4,
                                     buffer_size=100), 18),  # steps > 10 from 12; 7 steps more: 12, 15, 18
    "sac": (SAC, "Pendulum-v1", dict(num_envs=2, learning_starts=5, train_frequency=3, batch_size=4,
                                     buffer_size=100), 8),  # steps > 5 from 6; 3 steps more: 6, 8
    # no learning_starts: the first update waits for a sampleable transition (more than n_step per env)
    "dqn, 3-step, at once": (DQN, "CartPole-v1", dict(num_envs=4, learning_starts=0, train_frequency=1, n_step=3,
                                                     batch_size=4, buffer_size=100), 16),
    "sac, at once": (SAC, "Pendulum-v1", dict(num_envs=2, learning_starts=0, train_frequency=1, batch_size=4,
                                              buffer_size=100), 4),
}


def parameters(agent) -> list[torch.Tensor]:
    return [p.detach().clone() for p in agent.parameters()]


def trained(agent, steps: int, run_dir) -> bool:
    before = parameters(agent)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agent.learn(steps, run_dir=run_dir, progress=False)
    return any(not torch.equal(a, b) for a, b in zip(before, parameters(agent)))


@pytest.mark.parametrize("name", CASES)
def test_first_update_is_the_step_the_first_update_runs_at(name, tmp_path):
    agent_cls, env_id, settings, first = CASES[name]
    settings = dict(settings, eval_every=0, eval_episodes=1, checkpoint_every=0, seed=3)
    assert agent_cls.from_env(env_id, **settings).config.first_update()[0] == first
    last_without = first - settings["num_envs"]
    agent = agent_cls.from_env(env_id, steps=last_without, **settings)
    assert nothing_learned_warning(agent.config) is not None
    assert not trained(agent, last_without, tmp_path / "before")
    agent = agent_cls.from_env(env_id, steps=last_without + 1, **settings)  # run on to ``first``
    assert nothing_learned_warning(agent.config) is None
    assert trained(agent, last_without + 1, tmp_path / "at")


def test_learn_warns_and_the_warning_names_the_settings(tmp_path):
    agent = PPO.from_env("CartPole-v1", num_envs=2, num_steps=16, eval_every=0, eval_episodes=1)
    with pytest.warns(UserWarning, match=r"^--steps 20 ends before the first update, at step 32 \(one rollout of "
                                         r"--num-envs 2 x --num-steps 16\): this run will train nothing$"):
        agent.learn(20, run_dir=tmp_path / "run", progress=False)
    dqn = DQN.from_env("CartPole-v1", steps=500, learning_starts=1000, train_frequency=4)
    assert nothing_learned_warning(dqn.config).endswith("(--learning-starts 1000, then --train-frequency 4): "
                                                        "this run will train nothing")
    assert REINFORCE.from_env("CartPole-v1", steps=1).config.first_update() == (0, "")


def test_train_py_prints_the_warning_and_still_runs(tmp_path, capsys):
    assert train.main(["--steps", "100", "--eval-every", "0", "--eval-episodes", "1", "--no-progress",
                       "--run-dir", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert err.splitlines()[0] == ("warning: --steps 100 ends before the first update, at step 256 (one rollout of "
                                   "--num-envs 8 x --num-steps 32): this run will train nothing")
    assert (tmp_path / "run" / "summary.json").is_file()
