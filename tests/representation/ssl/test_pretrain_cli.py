"""scripts/pretrain.py end to end on CartPole, its bad inputs, and the frame collection under it."""
import json
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.base import Agent
from agents.registry import agent_class
from representation.encoders import make_encoder, read_encoder_file, save_encoder
from representation.ssl.collect import RandomPolicy, collect_frames

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))
import pretrain  # noqa: E402
import train  # noqa: E402

TINY = ["--env", "CartPole-v1", "--frames", "512", "--batch-size", "64", "--epochs", "1", "--num-envs", "4",
        "--no-progress"]


# ----------------------------------------------------------------------------- collection

class CountingEnv:
    """Observation of env k after t steps is [t, k, last action]; stands in for a VecEnv."""

    def __init__(self, num_envs: int):
        self.num_envs = num_envs
        self.single_action_space = gym.spaces.Discrete(3)
        self.steps = 0

    def reset(self, seed=None):
        self.steps = 0
        return self._obs(torch.full((self.num_envs,), -1))

    def step(self, action):
        self.steps += 1
        return (self._obs(action),)

    def _obs(self, action):
        return torch.stack([torch.full((self.num_envs,), self.steps), torch.arange(self.num_envs), action], dim=1)


def test_collect_frames_is_time_major_and_cut_at_the_budget():
    env = CountingEnv(3)
    data = collect_frames(env, 8, policy=lambda obs: obs[:, 1] * 10 + obs[:, 0], ground_truth=lambda e, obs: obs[:, :2])
    expected = [[t, k, -1 if t == 0 else k * 10 + t - 1] for t in range(3) for k in range(3)][:8]
    assert data.obs.tolist() == expected
    assert data.truth.dtype == torch.float32 and data.truth.tolist() == [row[:2] for row in expected]
    assert env.steps == 2  # no step after the last stored observation


def test_random_policy_draws_every_action_reproducibly():
    obs = torch.zeros(6000, 1)
    actions = RandomPolicy(gym.spaces.Discrete(3, start=-1), seed=4)(obs)
    assert torch.equal(actions, RandomPolicy(gym.spaces.Discrete(3, start=-1), seed=4)(obs))
    counts = torch.bincount(actions + 1, minlength=3)
    assert counts.sum() == 6000 and counts.min() > 1850  # uniform: 2000 each, std ~37
    box = RandomPolicy(gym.spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, 5.0], np.float32)))(obs)
    assert box.shape == (6000, 2)
    assert (box.min(0).values >= torch.tensor([-1.0, 0.0])).all()
    assert (box.max(0).values <= torch.tensor([1.0, 5.0])).all()
    assert box[:, 1].mean().item() == pytest.approx(2.5, abs=0.1)
    multi = RandomPolicy(gym.spaces.MultiDiscrete([2, 4]))(obs)
    assert multi[:, 0].unique().tolist() == [0, 1] and multi[:, 1].unique().tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="bounded Box"):
        RandomPolicy(gym.spaces.Box(-np.inf, np.inf, (2,)))


# ----------------------------------------------------------------------------- pre-train -> train

@pytest.mark.parametrize("method", ["simclr", "vae"])
def test_pretrained_encoder_trains_an_agent_frozen(method, tmp_path, capsys):
    out = tmp_path / method
    assert pretrain.main(["--method", method, "--out", str(out), "--seed", "3", *TINY]) == 0
    printed = capsys.readouterr().out
    command = (f"python scripts/train.py --env CartPole-v1 --encoder-checkpoint {out / 'encoder.pt'} "
               "--freeze-encoder")
    assert command in printed
    assert list(out.glob("events.out.tfevents.*"))
    config = json.loads((out / "config.json").read_text())
    assert (config["method"], config["frames"], config["policy"], config["encoder"]) == (method, 512, "random", "mlp")
    assert config["beta"] == (1.0 if method == "vae" else None)
    saved = read_encoder_file(out / "encoder.pt")
    torch.manual_seed(3)  # pre-training started from these weights; it must have moved them
    initial = make_encoder(saved["name"], gym.spaces.Box(-np.inf, np.inf, (4,)), **saved["options"]).state_dict()
    assert not torch.equal(initial["net.0.weight"], saved["state_dict"]["net.0.weight"])
    encoder_file = (out / "encoder.pt").read_bytes()
    with pytest.raises(SystemExit) as exit_info:  # a second pre-training would overwrite this one
        pretrain.main(["--method", "byol", "--out", str(out), *TINY])
    assert exit_info.value.code == 2 and "already holds a pre-trained encoder" in capsys.readouterr().err
    assert (out / "encoder.pt").read_bytes() == encoder_file

    run = tmp_path / "run"
    train.main(["--env", "CartPole-v1", "--encoder-checkpoint", str(out / "encoder.pt"), "--freeze-encoder",
                "--steps", "2000", "--run-dir", str(run), "--no-progress", "--eval-episodes", "2"])
    agent = Agent.load(run / "checkpoint.pt")
    for encoder in (agent.net.encoder, agent.net.critic_encoder):
        trained = encoder.state_dict()
        assert trained.keys() == saved["state_dict"].keys()
        assert all(torch.equal(trained[k], saved["state_dict"][k]) for k in trained)


@pytest.mark.parametrize("method, encoder", [("gan", "mlp"), ("wgan_gp", "mlp"), ("ddpm", "ddpm"), ("realnvp", "flow"),
                                             ("nice", "flow")])
def test_every_generative_model_hands_its_encoder_to_an_agent(method, encoder, tmp_path):
    out = tmp_path / method
    extra = ["--feature-timestep", "7"] if method == "ddpm" else []
    assert pretrain.main(["--method", method, "--out", str(out), *TINY, *extra]) == 0
    config = json.loads((out / "config.json").read_text())
    saved = read_encoder_file(out / "encoder.pt")
    assert config["encoder"] == saved["name"] == encoder and config["encoder_file_options"] == saved["options"]
    assert config["encoder_options"] == {}  # the command's own
    if method == "ddpm":
        assert saved["options"]["timestep"] == config["feature_timestep"] == 7
    run = tmp_path / "run"
    train.main(["--agent", "dqn", "--env", "CartPole-v1", "--encoder-checkpoint", str(out / "encoder.pt"),
                "--freeze-encoder", "--steps", "300", "--learning-starts", "100", "--run-dir", str(run),
                "--no-progress", "--eval-episodes", "1"])
    trained = Agent.load(run / "checkpoint.pt").q.encoder.state_dict()
    assert trained.keys() == saved["state_dict"].keys()
    assert all(torch.equal(trained[k], saved["state_dict"][k]) for k in trained)


def test_a_gan_pretrains_on_frames_of_any_size(tmp_path):
    """The pixel env's 64x64 frames through the Nature-CNN discriminator (DCGAN nets would also
    take 64x64; Atari's 84x84 only fits this one)."""
    out = tmp_path / "gan"
    assert pretrain.main(["--method", "gan", "--env", "reprl/DistractorCartPole-v0", "--frames", "64",
                          "--batch-size", "32", "--epochs", "1", "--num-envs", "2", "--no-progress",
                          "--encoder-options", '{"features_dim": 32}', "--out", str(out)]) == 0
    saved = read_encoder_file(out / "encoder.pt")
    assert (saved["name"], saved["options"]) == ("nature", {"features_dim": 32})


def test_probe_compares_the_pretrained_encoder_with_its_initial_weights(tmp_path, capsys):
    out = tmp_path / "byol"
    pretrain.main(["--method", "byol", "--out", str(out), *TINY])
    assert pretrain.main(["--probe", str(out), "--env", "CartPole-v1", "--frames", "400", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "probe.json").read_text())
    assert report["frames"] == 400 and report["random_init_seed"] == 0 and report["encoder"] == "mlp"
    names = [f"state[{i}]" for i in range(4)] + ["mean"]
    for label in ("pretrained", "random"):
        assert list(report["r2"][label]) == names
        assert all(-1.0 < value <= 1.0 for value in report["r2"][label].values())
    assert report["r2"]["pretrained"] != report["r2"]["random"]
    assert "state[3]" in printed and "pretrained" in printed


def test_frames_can_come_from_a_saved_agent(tmp_path):
    agent_path = tmp_path / "agent.pt"
    agent_class("ppo").from_env("CartPole-v1", seed=0).save(agent_path)
    out = tmp_path / "simsiam"
    assert pretrain.main(["--method", "simsiam", "--out", str(out), "--agent-checkpoint", str(agent_path), *TINY]) == 0
    assert json.loads((out / "config.json").read_text())["policy"] == "agent"


# ----------------------------------------------------------------------------- bad input

BAD_INPUTS = {
    "unknown method": (["--method", "mae", *TINY], "invalid choice: 'mae'"),
    "unknown env": (["--method", "simclr", "--env", "NoSuchEnv-v0", "--frames", "512"], "unknown environment id"),
    "frames below batch": (["--method", "simclr", *TINY, "--frames", "32"], "--frames must be at least --batch-size"),
    "missing agent": (["--method", "simclr", *TINY, "--agent-checkpoint", "nowhere.pt"],
                      "agent checkpoint 'nowhere.pt' does not exist"),
    "agent folder": (["--method", "simclr", *TINY, "--agent-checkpoint", "tests"],
                     "'tests' is a folder: give the agent checkpoint in it (a run's checkpoint.pt or agent.pt)"),
    "image encoder on vectors": (["--method", "byol", *TINY, "--encoder", "nature"], "needs image observations"),
    "vae with impala": (["--method", "vae", *TINY, "--encoder", "impala"], "vae hands over a mlp encoder"),
    "beta outside the vae": (["--method", "moco", *TINY, "--beta", "2"], "--beta is a VAE setting"),
    "beta for a gan": (["--method", "gan", *TINY, "--beta", "2"], "--beta is a VAE setting"),
    "ddpm with nature": (["--method", "ddpm", *TINY, "--encoder", "nature"], "ddpm hands over a ddpm encoder"),
    "flow on images": (["--method", "realnvp", "--env", "reprl/DistractorCartPole-v0", "--frames", "64",
                        "--batch-size", "32", "--no-progress"], "realnvp models vectors"),
    "discrete states": (["--method", "simclr", "--env", "FrozenLake-v1", "--frames", "512", "--no-progress"],
                        "pre-training takes vector or image observations, 'FrozenLake-v1' gives Discrete(16)"),
    "timestep beyond the chain": (["--method", "ddpm", *TINY, "--encoder-options", '{"timesteps": 50}',
                                   "--feature-timestep", "50"], "--feature-timestep must lie in [0, 50), got 50"),
    "timestep for a gan": (["--method", "gan", *TINY, "--feature-timestep", "5"], "--feature-timestep is a ddpm"),
    "bad model option": (["--method", "ddpm", *TINY, "--encoder-options", '{"depth": 3}'],
                         "bad --encoder-options for ddpm"),
    "no method": (TINY, "pre-training needs --method"),
    "absent device": (["--method", "simclr", *TINY, "--device", "cuda:64"], "device 'cuda:64'"),
    "negative seed": (["--method", "simclr", *TINY, "--seed", "-1"], "--seed must be in [0, 2147483647], got -1"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, tmp_path, capsys):
    argv, message = BAD_INPUTS[case]
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        pretrain.main([*argv, "--out", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()


def test_agent_for_another_env_is_refused(tmp_path, capsys):
    agent_path = tmp_path / "acrobot.pt"
    agent_class("ppo").from_env("Acrobot-v1", seed=0).save(agent_path)
    with pytest.raises(SystemExit):
        pretrain.main(["--method", "simclr", *TINY, "--agent-checkpoint", str(agent_path),
                       "--out", str(tmp_path / "o")])
    assert "sees observations of shape (6,)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv, message", [
    (["--env", "CartPole-v1"], "does not exist"),
    (["--env", "ALE/Tennis-v5"], "no RAM annotations for 'tennis'"),
    (["--env", "CartPole-v1", "--frames", "20"], "at least 50"),
])
def test_bad_probe_exits_2(argv, message, tmp_path, capsys):
    if "does not exist" not in message:
        save_encoder(make_encoder("mlp", gym.spaces.Box(-1, 1, (4,))), "mlp", {}, tmp_path / "encoder.pt")
    with pytest.raises(SystemExit) as exit_info:
        pretrain.main(["--probe", str(tmp_path), *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("where", ["", "/sub", "/sub/deeper"])
def test_an_out_folder_at_or_under_a_file_is_refused_before_any_frame_is_collected(where, tmp_path, capsys,
                                                                                   monkeypatch):
    def collect(*_, **__):
        raise AssertionError("frames collected for an --out that cannot be made")

    monkeypatch.setattr(pretrain, "make_collection_env", collect)
    taken = tmp_path / "afile"
    taken.write_text("a file")
    with pytest.raises(SystemExit) as exit_info:
        pretrain.main(["--method", "byol", *TINY, "--out", f"{taken}{where}"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"error: --out '{taken}{where}' cannot be a folder: '{taken}' is a file\n"
    assert taken.read_text() == "a file"


def test_a_disk_that_refuses_the_encoder_file_is_one_line(tmp_path, capsys, monkeypatch):
    def disk_full(encoder, name, options, path):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(pretrain, "save_encoder", disk_full)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        pretrain.main(["--method", "byol", *TINY, "--out", str(out)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"error: [Errno 28] No space left on device: '{out / 'encoder.pt'}'\n"
    assert not (out / "encoder.pt").exists() and not (out / "config.json").exists()


def test_help_shows_every_default(capsys):
    with pytest.raises(SystemExit) as exit_info:
        pretrain.main(["--help"])
    assert exit_info.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    for flag, default in [("--seed SEED", "0"), ("--device DEVICE", "cpu"), ("--num-envs NUM_ENVS", "8")]:
        start = help_text.index(f"{flag} ")
        assert f"(default: {default})" in help_text[start:help_text.index(" --", start + 1)], flag
