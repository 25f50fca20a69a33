"""Tabular Q-learning, SARSA and Expected SARSA: exact updates against loops, the classic results."""
import json
import math
import sys
from pathlib import Path

import pytest
import torch
from gymnasium import spaces

from agents.exploration import boltzmann_probs, epsilon_greedy_probs, linear_schedule
from agents.runner import Runner
from agents.tabular import ExpectedSARSA, QLearning, SARSA, TabularConfig
from replay import Batch
from test_resume import crash_and_checkpoint, resume

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import train  # noqa: E402

TABLE = [[1.0, 5.0, 2.0], [2.0, 0.5, 4.0], [0.0, 3.0, -1.0], [6.0, 1.0, 2.0]]
ALPHA, GAMMA = 0.5, 0.9
# Five envs; envs 0, 1 and 4 all update (s=0, a=1), with envs 2 and 3 in between.
STATE = [0, 0, 1, 2, 0]
ACTION = [1, 1, 2, 0, 1]
REWARD = [1.0, -1.0, 0.5, 2.0, 0.0]
NEXT_STATE = [2, 3, 0, 1, 0]
TERMINATED = [False, False, True, False, False]
TRUNCATED = [False, False, False, True, False]  # env 3 bootstraps from its true final state 1
NEXT_ACTION = [2, 0, 1, 1, 0]


def make_agent(cls, **settings):
    config = TabularConfig(learning_rate=ALPHA, gamma=GAMMA, **settings)
    agent = cls(config, spaces.Discrete(4), spaces.Discrete(3))
    agent.q_table.copy_(torch.tensor(TABLE))
    return agent


def batch(next_action=None):
    return Batch(obs=torch.tensor(STATE), action=torch.tensor(ACTION), reward=torch.tensor(REWARD),
                 next_obs=torch.tensor(NEXT_STATE), terminated=torch.tensor(TERMINATED),
                 next_action=None if next_action is None else torch.tensor(next_action))


def loop_update(next_value) -> list[list[float]]:
    """The reference: every target from the table before the step, then the updates one by one."""
    targets = [REWARD[i] + (0.0 if TERMINATED[i] else GAMMA * next_value(i, TABLE[NEXT_STATE[i]]))
               for i in range(len(STATE))]
    table = [row[:] for row in TABLE]
    for i, target in enumerate(targets):
        s, a = STATE[i], ACTION[i]
        table[s][a] += ALPHA * (target - table[s][a])
    return table


def epsilon_greedy_value(row, epsilon):
    best = max(row)
    return sum((epsilon / len(row) + (1 - epsilon) * (q == best)) * q for q in row)


def test_q_learning_update_matches_the_loop():
    agent = make_agent(QLearning)
    agent.update(batch(), step=0)
    torch.testing.assert_close(agent.q_table, torch.tensor(loop_update(lambda i, row: max(row))))


def test_sarsa_update_matches_the_loop():
    agent = make_agent(SARSA)
    with pytest.raises(ValueError, match="needs batch.next_action"):
        agent.update(batch(), step=0)
    agent.update(batch(NEXT_ACTION), step=0)
    torch.testing.assert_close(agent.q_table, torch.tensor(loop_update(lambda i, row: row[NEXT_ACTION[i]])))


def test_expected_sarsa_update_matches_the_loop_under_epsilon_greedy():
    agent = make_agent(ExpectedSARSA, start_e=0.2, end_e=0.2)
    agent.update(batch(), step=0)
    expected = loop_update(lambda i, row: epsilon_greedy_value(row, 0.2))
    torch.testing.assert_close(agent.q_table, torch.tensor(expected))


def test_expected_sarsa_update_matches_the_loop_under_boltzmann():
    agent = make_agent(ExpectedSARSA, exploration="boltzmann", start_temperature=2.0, end_temperature=2.0)
    agent.update(batch(), step=0)

    def softmax_value(i, row):
        weights = [math.exp(q / 2.0) for q in row]
        return sum(w * q for w, q in zip(weights, row)) / sum(weights)
    torch.testing.assert_close(agent.q_table, torch.tensor(loop_update(softmax_value)))


def test_sarsa_hooks_complete_pending_transitions_with_the_next_action():
    """observe keeps the step; the next rollout_action picks a' from the table before updating.

    Greedy behaviour (epsilon 0) makes every draw predictable: where an env went on, a' is the
    action chosen at the new obs; env 3 was truncated (a' is a draw at its final state 1); env 4
    did not end but comes back in a different state (as after a resume with fresh episodes), so
    its a' is a draw at its true next state 0, not the action chosen at 3.
    """
    agent = make_agent(SARSA, start_e=0.0, end_e=0.0)
    ended = torch.tensor(TERMINATED) | torch.tensor(TRUNCATED)
    agent.observe(torch.tensor(STATE), torch.tensor(ACTION), torch.tensor(REWARD), torch.tensor(NEXT_STATE),
                  torch.tensor(TERMINATED), torch.tensor(TRUNCATED), {})
    assert agent.after_step(torch.tensor(NEXT_STATE), step=5) is None  # nothing updated yet
    obs = torch.tensor([2, 3, 3, 3, 3])  # envs 2 and 3 restarted in state 3; env 4 is "resumed" in 3
    greedy = [max(range(3), key=row.__getitem__) for row in TABLE]
    stored, env_action, _ = agent.rollout_action(obs, step=5)
    assert stored.tolist() == env_action.tolist() == [greedy[s] for s in obs.tolist()]
    next_action = [greedy[s] for s in NEXT_STATE]
    assert not ended[4] and greedy[3] != greedy[NEXT_STATE[4]]
    torch.testing.assert_close(agent.q_table, torch.tensor(loop_update(lambda i, row: row[next_action[i]])))
    metrics = agent.after_step(obs, step=5)
    assert set(metrics) == {"losses/td_error", "losses/q_values", "charts/epsilon", "charts/learning_rate"}


def test_q_learning_hooks_update_in_after_step():
    agent = make_agent(QLearning)
    agent.observe(torch.tensor(STATE), torch.tensor(ACTION), torch.tensor(REWARD), torch.tensor(NEXT_STATE),
                  torch.tensor(TERMINATED), torch.tensor(TRUNCATED), {})
    agent.after_step(torch.tensor([2, 3, 3, 3, 0]), step=5)
    torch.testing.assert_close(agent.q_table, torch.tensor(loop_update(lambda i, row: max(row))))


def test_boltzmann_probabilities_are_the_softmax():
    q = torch.tensor([[1.0, 2.0, -0.5], [0.0, 0.0, 3.0]])
    for temperature in (0.5, 1.0, 4.0):
        expected = [[math.exp(v / temperature) / sum(math.exp(w / temperature) for w in row) for v in row]
                    for row in q.tolist()]
        torch.testing.assert_close(boltzmann_probs(q, temperature), torch.tensor(expected))
    with pytest.raises(ValueError, match="temperature must be positive"):
        boltzmann_probs(q, 0.0)


def test_epsilon_greedy_probabilities_split_ties():
    q = torch.tensor([[1.0, 3.0, 3.0, 0.0], [2.0, 1.0, 0.0, -1.0]])
    expected = [[0.025, 0.475, 0.475, 0.025], [0.925, 0.025, 0.025, 0.025]]
    torch.testing.assert_close(epsilon_greedy_probs(q, 0.1), torch.tensor(expected))


def test_epsilon_temperature_and_learning_rate_schedules():
    agent = make_agent(QLearning, steps=1_000, start_e=1.0, end_e=0.1, exploration_fraction=0.4,
                       lr_schedule="linear", final_learning_rate=0.1)
    assert [agent.exploration_value(s) for s in (0, 200, 400, 900)] == pytest.approx([1.0, 0.55, 0.1, 0.1])
    assert [agent.learning_rate(s) for s in (0, 500, 1_000, 2_000)] == pytest.approx([0.5, 0.3, 0.1, 0.1])
    boltzmann = make_agent(QLearning, steps=1_000, exploration="boltzmann", start_temperature=2.0,
                           end_temperature=0.5, exploration_fraction=0.5)
    assert [boltzmann.exploration_value(s) for s in (0, 250, 500, 800)] == pytest.approx([2.0, 1.25, 0.5, 0.5])
    assert make_agent(QLearning).learning_rate(10**6) == ALPHA  # constant by default
    assert linear_schedule(1.0, 0.0, 0, 0) == 0.0


def test_greedy_act_and_action_offsets():
    config = TabularConfig(initial_q=0.0)
    agent = QLearning(config, spaces.Discrete(4, start=10), spaces.Discrete(3, start=-1))
    agent.q_table.copy_(torch.tensor(TABLE))
    assert agent.act(torch.tensor([10, 11, 12, 13]), explore=False).tolist() == [0, 1, 0, -1]


def test_spaces_and_settings_a_table_cannot_use_are_refused(tmp_path, capsys):
    with pytest.raises(ValueError, match="discrete observation space"):
        QLearning(TabularConfig(), spaces.Box(-1.0, 1.0, (4,)), spaces.Discrete(2))
    with pytest.raises(ValueError, match="normalize-obs does not apply"):
        QLearning(TabularConfig(normalize_obs=True), spaces.Discrete(4), spaces.Discrete(2))
    with pytest.raises(ValueError, match="--aux does not apply"):
        SARSA(TabularConfig(aux="curl"), spaces.Discrete(4), spaces.Discrete(2))
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--agent", "sarsa", "--env", "CartPole-v1", "--steps", "64", "--no-progress",
                    "--run-dir", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sarsa needs a discrete observation space" in err, err


def episodes_trained(run_dir: Path) -> int:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return int(sum(json.loads(line).get("charts/episodes", 0) for line in lines))


@pytest.mark.slow
def test_cliff_walking_q_learning_walks_the_edge_and_sarsa_the_safe_path(tmp_path):
    """Sutton & Barto (2018), Example 6.6: with epsilon 0.1 fixed, Q-learning learns the optimal
    path along the cliff (13 steps) and SARSA a longer one away from it."""
    returns = {}
    for cls, steps in ((QLearning, 6_000), (SARSA, 10_000)):  # about 230 and 380 episodes
        agent = cls.from_env("CliffWalking-v1", seed=1, steps=steps, log_every=500)
        agent.learn(run_dir=tmp_path / cls.name, progress=False)
        summary = json.loads((tmp_path / cls.name / "summary.json").read_text())
        assert agent.config.start_e == agent.config.end_e == 0.1 and agent.config.learning_rate == 0.5
        assert episodes_trained(tmp_path / cls.name) <= 500
        returns[cls.name] = summary["eval_return_mean"]
    assert returns["qlearning"] == -13.0
    assert returns["sarsa"] in (-15.0, -17.0)


@pytest.mark.slow
def test_q_learning_solves_slippery_frozen_lake(tmp_path):
    """The optimal policy of the slippery 4x4 lake reaches the goal about 74% of the time."""
    agent = QLearning.from_env("FrozenLake-v1", seed=1, eval_every=0, eval_episodes=1_000)
    assert agent.config.steps == 50_000  # the preset's budget
    agent.learn(run_dir=tmp_path / "run", progress=False)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert len(summary["eval_returns"]) == 1_000
    assert summary["eval_return_mean"] >= 0.7, summary["eval_return_mean"]


@pytest.mark.slow
def test_q_learning_learns_taxi(tmp_path):
    """Random play scores about -785 and a policy that never delivers at best -200 (the time
    limit at -1 a step); a mean of 0 or more needs nearly every passenger delivered."""
    agent = QLearning.from_env("Taxi-v4", seed=1, steps=50_000, eval_every=0)
    agent.learn(run_dir=tmp_path / "run", progress=False)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["eval_return_mean"] >= 0.0, summary["eval_returns"]


@pytest.mark.slow
def test_q_learning_plays_blackjack_better_than_simple_rules(tmp_path):
    """Over 5,000 hands, always sticking scores about -0.18 and hitting below 17 about -0.08
    (the optimal policy about -0.05); the greedy policy has to use the dealer's card and the ace."""
    agent = QLearning.from_env("Blackjack-v1", seed=1, steps=100_000, eval_every=0, eval_episodes=5_000)
    assert agent.q_table.shape == (704, 2)
    agent.learn(run_dir=tmp_path / "run", progress=False)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["eval_return_mean"] >= -0.075, summary["eval_return_mean"]


def test_blackjack_resumes_exactly_from_a_checkpoint_holding_its_hands(tmp_path):
    settings = dict(seed=3, steps=2_000, num_envs=2, checkpoint_every=500, eval_every=0, eval_episodes=1,
                    log_every=100)
    unbroken = QLearning.from_env("Blackjack-v1", **settings)
    Runner(unbroken, run_dir=tmp_path / "unbroken", progress=False).run()
    payload = crash_and_checkpoint(QLearning.from_env("Blackjack-v1", **settings), 1_500, tmp_path / "crashed")
    resumed = resume(payload, tmp_path / "crashed")
    assert torch.equal(unbroken.q_table, resumed.q_table)


@pytest.mark.parametrize("cls", [QLearning, SARSA, ExpectedSARSA])
def test_resume_after_a_crash_equals_an_unbroken_run(cls, tmp_path):
    """SARSA's checkpoints hold a pending transition; a 50-step limit adds truncations."""
    settings = dict(seed=3, steps=2_000, num_envs=2, checkpoint_every=500, eval_every=0, eval_episodes=1,
                    log_every=100, start_e=1.0, end_e=0.1, exploration_fraction=0.5, gamma=0.99,
                    lr_schedule="linear", env_options={"max_episode_steps": 50})
    unbroken = cls.from_env("CliffWalking-v1", **settings)
    Runner(unbroken, run_dir=tmp_path / "unbroken", progress=False).run()

    payload = crash_and_checkpoint(cls.from_env("CliffWalking-v1", **settings), 1_500, tmp_path / "crashed")
    assert payload["runner"]["step"] == 1_500
    assert (payload["training"]["pending"] is not None) == (cls is SARSA)
    resumed = resume(payload, tmp_path / "crashed")
    assert isinstance(resumed, cls)

    assert torch.equal(unbroken.q_table, resumed.q_table)
    assert not torch.equal(unbroken.q_table, torch.zeros_like(unbroken.q_table))
    unbroken_log = (tmp_path / "unbroken" / "metrics.jsonl").read_text().splitlines()
    resumed_log = (tmp_path / "crashed" / "metrics.jsonl").read_text().splitlines()
    assert len(unbroken_log) == len(resumed_log)
