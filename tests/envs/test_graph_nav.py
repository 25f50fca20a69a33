"""reprl/GraphNav-v0: dynamics on a hand-built graph, optimal and random play."""
import gymnasium as gym
import numpy as np
import pytest

from envs.graph_nav import ENV_ID, GraphNavEnv, distances_to, optimal_return, shortest_path_action

# 0 - 1 - 2 - 3 with a branch 1 - 4; node 5 is padding (max_nodes = 6).
EDGES = [(0, 1), (1, 2), (2, 3), (1, 4)]
ADJACENCY = np.zeros((5, 5), dtype=np.float32)
for a, b in EDGES:
    ADJACENCY[a, b] = ADJACENCY[b, a] = 1.0
PENALTY = 0.1


def hand_built_env(max_steps: int = 12) -> tuple[GraphNavEnv, np.ndarray]:
    env = GraphNavEnv(max_nodes=6, step_penalty=PENALTY, max_steps=max_steps)
    obs, info = env.reset(seed=0, options={"adjacency": ADJACENCY, "start": 0, "target": 3})
    assert info == {"distance": 3, "optimal_return": pytest.approx(1.0 - 2 * PENALTY)}
    return env, obs


def agent_node(obs: np.ndarray) -> int:
    return int(np.argmax(obs[:, 1]))


def test_observation_encodes_graph_agent_and_target():
    env, obs = hand_built_env()
    expected = np.zeros((6, 9), dtype=np.float32)
    expected[:5, 0] = 1.0
    expected[0, 1] = 1.0  # agent at 0
    expected[3, 2] = 1.0  # target at 3
    expected[:5, 3:8] = ADJACENCY
    np.testing.assert_array_equal(obs, expected)
    assert obs in env.observation_space


def test_moves_to_neighbours_and_ignores_other_actions():
    env, obs = hand_built_env()
    for action, expected_node in [(2, 0), (5, 0), (0, 0), (1, 1), (4, 4), (3, 4), (1, 1), (2, 2)]:
        obs, reward, terminated, truncated, info = env.step(action)
        assert agent_node(obs) == expected_node and obs in env.observation_space
        assert (reward, terminated, truncated) == (-PENALTY, False, False)
        assert info["distance"] == {0: 3, 1: 2, 2: 1, 4: 3}[expected_node]
    obs, reward, terminated, truncated, info = env.step(3)
    assert (agent_node(obs), reward, terminated, truncated, info["distance"]) == (3, 1.0, True, False, 0)
    with pytest.raises(ValueError, match="outside"):
        env.step(6)


def test_truncates_after_max_steps():
    env, _ = hand_built_env(max_steps=3)
    results = [env.step(2)[1:4] for _ in range(3)]  # 2 is not a neighbour of 0: three no-ops
    assert results == [(-PENALTY, False, False), (-PENALTY, False, False), (-PENALTY, False, True)]
    _, info = env.reset(options={"adjacency": ADJACENCY, "start": 0, "target": 3})
    assert info["optimal_return"] == pytest.approx(1.0 - 2 * PENALTY)  # distance 3 fits in 3 steps
    env = GraphNavEnv(max_nodes=6, step_penalty=PENALTY, max_steps=2)
    _, info = env.reset(options={"adjacency": ADJACENCY, "start": 0, "target": 3})
    assert info["optimal_return"] == pytest.approx(-2 * PENALTY)  # the target is out of reach


def test_ansi_render_names_agent_target_and_edges():
    env = GraphNavEnv(max_nodes=6, render_mode="ansi")
    env.reset(options={"adjacency": ADJACENCY, "start": 0, "target": 3})
    env.step(1)
    assert env.render() == "agent 1 target 3 step 1 edges 0-1 1-2 1-4 2-3"


def test_rejects_bad_graphs_and_settings():
    env = GraphNavEnv(max_nodes=6)
    with pytest.raises(ValueError, match="cannot be reached"):
        env.reset(options={"adjacency": np.zeros((3, 3)), "start": 0, "target": 2})
    with pytest.raises(ValueError, match="symmetric"):
        env.reset(options={"adjacency": np.triu(np.ones((3, 3)), 1)})
    with pytest.raises(ValueError, match="distinct"):
        env.reset(options={"adjacency": ADJACENCY, "start": 3, "target": 3})
    with pytest.raises(ValueError, match="min_nodes"):
        GraphNavEnv(max_nodes=4, min_nodes=5)
    with pytest.raises(ValueError, match="max_steps"):
        GraphNavEnv(max_nodes=8, max_steps=0)
    with pytest.raises(ValueError, match="render_mode"):
        GraphNavEnv(render_mode="human")


def test_distances_match_floyd_warshall():
    rng = np.random.default_rng(0)
    for _ in range(20):
        upper = np.triu(rng.random((7, 7)) < 0.3, 1)
        adjacency = (upper | upper.T).astype(np.float32)
        reference = np.where(adjacency > 0, 1.0, np.inf)
        np.fill_diagonal(reference, 0.0)
        for k in range(7):
            reference = np.minimum(reference, reference[:, [k]] + reference[[k], :])
        for target in range(7):
            expected = np.where(np.isinf(reference[:, target]), -1, reference[:, target]).astype(np.int64)
            np.testing.assert_array_equal(distances_to(adjacency, target), expected)


def play(env: gym.Env, policy, episodes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    returns, optimal = [], []
    for episode in range(episodes):
        obs, info = env.reset(seed=seed + episode)
        optimal.append(info["optimal_return"])
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total += reward
            done = terminated or truncated
        returns.append(total)
    return np.array(returns), np.array(optimal)


def test_shortest_path_policy_reaches_the_optimal_return_and_random_play_does_not():
    env = gym.make(ENV_ID, max_nodes=8, min_nodes=4)
    assert env.observation_space.contains(env.reset(seed=0)[0])
    returns, optimal = play(env, shortest_path_action, episodes=100, seed=0)
    np.testing.assert_allclose(returns, optimal, rtol=0, atol=1e-9)
    assert optimal.min() >= optimal_return(7, 0.05, 16)  # graphs of at most 8 nodes
    action_rng = np.random.default_rng(0)
    random_returns, _ = play(env, lambda obs: int(action_rng.integers(8)), episodes=100, seed=0)
    assert random_returns.mean() < optimal.mean() - 0.5


def test_vectorised_through_make_vec():
    envs = gym.make_vec(ENV_ID, num_envs=8, vectorization_mode="sync")
    obs, info = envs.reset(seed=0)
    assert obs.shape == (8, 8, 11) and obs.dtype == np.float32
    assert envs.single_observation_space == GraphNavEnv().observation_space
    for _ in range(20):
        obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())
        assert all(envs.single_observation_space.contains(o) for o in obs)
        assert reward.shape == (8,)
    envs.close()
