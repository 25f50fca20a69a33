"""A run that dies and is resumed from its checkpoint ends exactly where an unbroken run ends."""
import os
import signal

import pytest
import torch

from agents import DQN, PPO
from agents.base import AGENT_FORMAT, Agent
from agents.checkpoint import load_checkpoint
from agents.runner import CHECKPOINT, Runner
from crashing import Crash, crash_after, crash_and_checkpoint

SETTINGS = {
    "dqn": dict(steps=1_600, num_envs=2, learning_starts=300, train_frequency=4, gradient_steps=1, batch_size=32,
                target_update_interval=100, buffer_size=5_000, checkpoint_every=500, eval_every=0, eval_episodes=2,
                log_every=100, n_step=3),
    "ppo": dict(steps=2_048, num_envs=4, num_steps=64, checkpoint_every=700, eval_every=0, eval_episodes=2,
                log_every=256),
}
AGENTS = {"dqn": DQN, "ppo": PPO}


def resume(payload: dict, run_dir) -> Agent:
    """The agent of ``payload`` (a checkpoint), run on to its step total in ``run_dir``."""
    resumed = Agent.from_payload(payload)
    Runner(resumed, run_dir=run_dir, progress=False, resume=payload).run()
    return resumed


@pytest.mark.parametrize("name", ["dqn", "ppo"])
def test_resume_after_a_crash_equals_an_unbroken_run(name, tmp_path):
    settings = SETTINGS[name]
    unbroken = AGENTS[name].from_env("CartPole-v1", **settings)
    Runner(unbroken, run_dir=tmp_path / "unbroken", progress=False).run()

    crashed = AGENTS[name].from_env("CartPole-v1", **settings)
    payload = crash_and_checkpoint(crashed, settings["steps"] * 3 // 4, tmp_path / "crashed")
    assert 0 < payload["runner"]["step"] < settings["steps"]
    assert ("rollout" in payload["training"]) == (name == "ppo")  # PPO's checkpoint falls inside a rollout
    resumed = resume(payload, tmp_path / "crashed")

    for (key, a), (_, b) in zip(unbroken.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), key
    steps_logged = [line for line in (tmp_path / "crashed" / "metrics.jsonl").read_text().splitlines()]
    assert len(steps_logged) == len((tmp_path / "unbroken" / "metrics.jsonl").read_text().splitlines())


def test_saved_agent_acts_like_the_original(tmp_path):
    agent = PPO.from_env("CartPole-v1", steps=512, num_envs=2, num_steps=64, eval_every=0, eval_episodes=1)
    agent.learn(run_dir=tmp_path / "run", progress=False)
    agent.save(tmp_path / "agent.pt")
    loaded = PPO.load(tmp_path / "agent.pt")
    obs = torch.randn(16, 4)
    assert torch.equal(agent.act(obs, explore=False), loaded.act(obs, explore=False))
    assert isinstance(Agent.load(tmp_path / "run" / CHECKPOINT), PPO)
    with pytest.raises(ValueError, match="not a dqn agent"):
        DQN.load(tmp_path / "agent.pt")


def test_a_resume_on_fresh_episodes_cuts_the_stored_ones(tmp_path):
    """Envs that cannot be snapshotted (here gymnasium's async vector env) resume on fresh episodes:
    the replay buffer's newest step before the checkpoint becomes a truncation in every env."""
    settings = {**SETTINGS["dqn"], "vectorization": "async", "steps": 1_200}
    payload = crash_and_checkpoint(DQN.from_env("CartPole-v1", **settings), 900, tmp_path)
    adds = payload["runner"]["step"] // settings["num_envs"]
    stored = payload["training"]["buffer"]
    assert not stored["truncated"][(adds - 1) % len(stored["truncated"])].all()  # not cut when saved
    buffer = resume(payload, tmp_path).buffer
    assert buffer.truncated[(adds - 1) % buffer.rows].all()
    assert buffer.env_steps.tolist() == [1_200 // settings["num_envs"]] * settings["num_envs"]


def test_a_resume_on_fresh_episodes_drops_the_rollout_under_way(tmp_path):
    """PPO's checkpoint at step 1,400 holds 120 steps of a 256-step rollout; envs that cannot be
    snapshotted restart their episodes, which cannot continue that rollout: the resumed run
    collects 2 whole rollouts in its 648 steps (an unbroken run collects 8 in all, not 7)."""
    settings = {**SETTINGS["ppo"], "vectorization": "async"}
    payload = crash_and_checkpoint(PPO.from_env("CartPole-v1", **settings), 1_536, tmp_path)
    assert payload["runner"]["step"] == 1_400 and payload["training"]["iteration"] == 5
    assert payload["training"]["rollout"]["step"] == 30
    assert resume(payload, tmp_path).iteration == 7


def test_ctrl_c_stops_after_the_step_under_way_and_its_checkpoint_resumes_exactly(tmp_path):
    """SIGINT in the middle of PPO's update: the update finishes, the loop writes a checkpoint at
    that step and stops; resumed, the run ends where an unbroken one ends."""
    settings = {**SETTINGS["ppo"], "checkpoint_every": 0}
    unbroken = PPO.from_env("CartPole-v1", **settings)
    Runner(unbroken, run_dir=tmp_path / "unbroken", progress=False).run()

    interrupted = PPO.from_env("CartPole-v1", **settings)
    update = interrupted.update
    updates_seen = []

    def update_then_signal(*args, **kwargs):
        updates_seen.append(1)
        if len(updates_seen) == 10:  # the 10th of the first rollout's 16 steps (4 epochs x 4 minibatches)
            os.kill(os.getpid(), signal.SIGINT)
        return update(*args, **kwargs)
    interrupted.update = update_then_signal
    with pytest.raises(KeyboardInterrupt):
        Runner(interrupted, run_dir=tmp_path / "interrupted", progress=False).run()
    payload = load_checkpoint(tmp_path / "interrupted" / CHECKPOINT, AGENT_FORMAT)
    assert payload["runner"]["step"] == 256  # the step whose update the signal fell in
    assert payload["training"]["iteration"] == 1 and "rollout" not in payload["training"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the usual Ctrl-C again
    resumed = resume(payload, tmp_path / "interrupted")
    for (key, a), (_, b) in zip(unbroken.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), key


def test_a_second_ctrl_c_stops_at_once_without_writing_a_checkpoint(tmp_path):
    agent = PPO.from_env("CartPole-v1", **{**SETTINGS["ppo"], "checkpoint_every": 0})
    update = agent.update
    updates_seen = []

    def update_then_signal_twice(*args, **kwargs):
        updates_seen.append(1)
        if len(updates_seen) == 10:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return update(*args, **kwargs)
    agent.update = update_then_signal_twice
    with pytest.raises(KeyboardInterrupt):
        Runner(agent, run_dir=tmp_path, progress=False).run()
    assert len(updates_seen) == 10 and not (tmp_path / CHECKPOINT).exists()


def test_a_finished_run_taken_further_has_no_summary_until_it_ends(tmp_path):
    """Its summary of the shorter budget would read as its result (compare.py's reports) if the
    longer run stopped before its end."""
    settings = {**SETTINGS["ppo"], "steps": 256}
    Runner(PPO.from_env("CartPole-v1", **settings), run_dir=tmp_path, progress=False).run()
    assert (tmp_path / "summary.json").is_file()
    payload = load_checkpoint(tmp_path / CHECKPOINT, AGENT_FORMAT)
    longer = Agent.from_payload(payload)
    longer.config.steps = 1_024
    crash_after(longer, 512)
    with pytest.raises(Crash):
        Runner(longer, run_dir=tmp_path, progress=False, resume=payload).run()
    assert not (tmp_path / "summary.json").exists()
