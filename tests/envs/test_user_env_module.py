"""``module:EnvId``: an env of one's own, registered by importing its module, as Gymnasium's
``gym.make`` takes it, through ``make_env``, the presets and ``train.py``."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.presets import env_family
from envs import check_env_id, env_file_name, make_env

MODULE = "reprl_test_user_envs"
ENV_ID = "ReprlTestShortCartPole-v0"
TRAIN = Path(__file__).resolve().parents[2] / "scripts" / "train.py"


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A module on the path whose import registers ``ENV_ID``: CartPole cut at 20 steps."""
    (tmp_path / f"{MODULE}.py").write_text(textwrap.dedent(f"""
        import gymnasium as gym
        gym.register("{ENV_ID}", entry_point="gymnasium.envs.classic_control:CartPoleEnv", max_episode_steps=20)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    gym.registry.pop(ENV_ID, None)
    sys.modules.pop(MODULE, None)


def test_make_env_imports_the_module_and_steps_its_env(user_module):
    assert ENV_ID not in gym.registry
    env = make_env(f"{MODULE}:{ENV_ID}", 2, seed=3)
    assert ENV_ID in gym.registry and env.single_observation_space.shape == (4,)
    reference = gym.make(ENV_ID)
    obs = env.reset()
    np.testing.assert_array_equal(obs[0].numpy(), reference.reset(seed=3)[0])
    for step in range(20):  # alternating pushes keep the pole up until the module's time limit
        action = step % 2
        obs, _, terminated, truncated, _ = env.step(torch.full((2,), action))
        ref_obs, _, ref_terminated, ref_truncated, _ = reference.step(action)
        assert (bool(terminated[0]), bool(truncated[0])) == (ref_terminated, ref_truncated)
        if ref_terminated or ref_truncated:
            break
        np.testing.assert_array_equal(obs[0].numpy(), ref_obs)
    assert ref_truncated and step == 19
    assert env_family(f"{MODULE}:{ENV_ID}") == "classic"
    env.close()


def test_a_missing_module_and_an_unregistered_name_give_one_line_each(user_module):
    with pytest.raises(ValueError, match=r"^environment id 'no_such_module_here:X-v0': importing "
                                         r"'no_such_module_here' failed: No module named 'no_such_module_here' "
                                         r"\(a module of your own must be installed or on PYTHONPATH\)$"):
        check_env_id("no_such_module_here:X-v0")
    with pytest.raises(ValueError, match=rf"^unknown environment id '{MODULE}:ReprlTestShortCartpole-v0': "
                                         rf"'{MODULE}' registered no 'ReprlTestShortCartpole-v0' "
                                         rf"\(did you mean {ENV_ID}"):
        check_env_id(f"{MODULE}:ReprlTestShortCartpole-v0")


def test_folder_names_leave_out_slashes_and_colons():
    assert env_file_name("ALE/Pong-v5") == "ALE_Pong-v5"
    assert env_file_name(f"{MODULE}:{ENV_ID}") == f"{MODULE}_{ENV_ID}"


def test_train_py_trains_on_an_env_of_ones_own(user_module, tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(user_module), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, str(TRAIN), "--env", f"{MODULE}:{ENV_ID}", "--steps", "512",
                             "--run-dir", str(run_dir)], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env"] == f"{MODULE}:{ENV_ID}" and summary["steps"] == 512
    assert summary["eval_return_mean"] <= 20  # the module's own time limit
