"""The Runner with an asynchronous env: every env's transitions reach replay paired with the
observation that env acted from and the action it was sent, whatever order the envs come back in."""
import json

import gymnasium as gym
import pytest
import torch

from agents import DQN
from agents.runner import Runner
from envs.vec_env import VecEnv
from wrappers.episode_stats import EpisodeStatistics

EPISODE_STEPS = 7


class ScriptedAsyncEnv(VecEnv):
    """``num_envs`` envs of which ``batch_size`` come back per step, in a random order; env ``e`` in
    its episode ``k`` at step ``t`` observes ``[e, k, t, 0]``, gets reward ``e + t / 10`` and
    terminates after ``EPISODE_STEPS`` steps. Each env's actions and observations are logged."""

    single_observation_space = gym.spaces.Box(-1e3, 1e3, (4,), "float32")
    single_action_space = gym.spaces.Discrete(2)

    def __init__(self, num_envs: int, batch_size: int):
        self.num_envs, self.device, self._batch = num_envs, torch.device("cpu"), batch_size
        self.gen = torch.Generator().manual_seed(0)
        self.episode = [0] * num_envs
        self.t = [0] * num_envs
        self.log = [[] for _ in range(num_envs)]  # per env: (obs, action, reward, next_obs, terminated)

    @property
    def batch_size(self) -> int:
        return self._batch

    @property
    def env_ids(self):
        return self._ids

    def _obs(self, env: int) -> torch.Tensor:
        return torch.tensor([env, self.episode[env], self.t[env], 0.0])

    def reset(self, seed=None):
        order = torch.randperm(self.num_envs, generator=self.gen).tolist()
        self._ids, self._queue, self._fresh = torch.tensor(order[:self._batch]), order[self._batch:], set(order[self._batch:])
        self._results = {}
        return torch.stack([self._obs(e) for e in self._ids.tolist()])

    def step(self, action):
        for env, a in zip(self._ids.tolist(), action.tolist()):
            obs = self._obs(env)
            self.t[env] += 1
            terminated = self.t[env] == EPISODE_STEPS
            final, reward = self._obs(env), env + self.t[env] / 10
            if terminated:
                self.episode[env], self.t[env] = self.episode[env] + 1, 0
            self.log[env].append((obs, a, reward, final, terminated))
            self._results[env] = (reward, final, terminated)  # delivered when the env comes back
        self._queue += self._ids.tolist()
        picks = torch.randperm(len(self._queue), generator=self.gen)[:self._batch].tolist()
        self._ids = torch.tensor([self._queue[i] for i in picks])
        self._queue = [env for i, env in enumerate(self._queue) if i not in picks]
        ids = self._ids.tolist()
        first = torch.tensor([env in self._fresh for env in ids])
        self._fresh -= set(ids)
        results = [self._results.pop(env, (0.0, self._obs(env), False)) for env in ids]
        info = {"env_id": self._ids, "final_obs": torch.stack([r[1] for r in results])}
        if first.any():
            info["first_obs"] = first
        return (torch.stack([self._obs(env) for env in ids]), torch.tensor([r[0] for r in results]),
                torch.tensor([r[2] for r in results]), torch.zeros(len(ids), dtype=torch.bool), info)


def test_transitions_of_envs_that_come_back_out_of_order_are_stored_as_each_env_lived_them(tmp_path, monkeypatch):
    env = ScriptedAsyncEnv(num_envs=6, batch_size=2)
    monkeypatch.setattr("agents.runner.make_train_env", lambda config, seeds=None: EpisodeStatistics(env))
    agent = DQN.from_env("CartPole-v1", num_envs=6, steps=600, learning_starts=100, train_frequency=4, gradient_steps=1,
                         batch_size=16, buffer_size=6_000, eval_every=0, eval_episodes=1, checkpoint_every=0,
                         log_every=200, seed=0)
    Runner(agent, run_dir=tmp_path, progress=False).run()

    buffer = agent.buffer
    in_flight = set(env._queue)  # sent an action whose result has not come back yet
    assert buffer.env_steps.tolist() == [len(log) - (e in in_flight) for e, log in enumerate(env.log)]
    assert min(buffer.env_steps) > 30
    batch = buffer.sample(2_000)
    for i, index in enumerate(batch.indices.tolist()):
        step, e = divmod(index, buffer.num_envs)
        obs, action, reward, next_obs, terminated = env.log[e][step]
        assert torch.equal(batch.obs[i], obs) and torch.equal(batch.next_obs[i], next_obs)
        assert (batch.action[i].item(), batch.terminated[i].item()) == (action, float(terminated))
        assert batch.reward[i].item() == pytest.approx(reward)
    assert len(set(batch.indices.tolist())) > 0.5 * sum(buffer.env_steps.tolist())
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    lengths = [row["charts/episodic_length"] for row in logged if "charts/episodic_length" in row]
    assert lengths and all(length == EPISODE_STEPS for length in lengths)  # first observations are no steps
