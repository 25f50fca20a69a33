"""``reprl/GraphNav-v0``: walk from a start node to a target node of a random connected graph.

Each episode draws a graph of ``min_nodes..max_nodes`` nodes (a random spanning tree plus
extra random edges, node labels shuffled) and two distinct nodes. The observation is the
graph as a ``PaddedGraph(max_nodes, 2)`` tensor whose node features are
``[is_agent, is_target]``. Action ``a`` moves the agent to node ``a`` when ``a`` is a neighbour
of the agent's node; any other action (a non-neighbour, a padded row, the agent's own node)
leaves it in place. Each step costs ``step_penalty``; the step that reaches the target pays
``+1`` instead and ends the episode; after ``max_steps`` steps the episode is truncated.

The best return is therefore ``1 - (d - 1) * step_penalty`` for a start at shortest-path
distance ``d <= max_steps`` from the target (``optimal_return``), reached by
``shortest_path_action``. The default ``max_steps = 2 * max_nodes`` leaves every target reachable.
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from representation.gnn.padded import PaddedGraph

ENV_ID = "reprl/GraphNav-v0"
AGENT, TARGET = 0, 1  # node feature columns
NODE_FEATURES = 2


def distances_to(adjacency: np.ndarray, target: int) -> np.ndarray:
    """Shortest-path lengths (edges) from every node to ``target``; -1 where unreachable.
    Breadth-first search one level at a time with vectorised frontier expansion."""
    n = adjacency.shape[0]
    distance = np.full(n, -1, dtype=np.int64)
    frontier = np.zeros(n, dtype=bool)
    frontier[target] = True
    level = 0
    while frontier.any():
        distance[frontier] = level
        frontier = (adjacency[frontier] > 0).any(axis=0) & (distance < 0)
        level += 1
    return distance


def optimal_return(distance: int, step_penalty: float, max_steps: int) -> float:
    """Best return from a start ``distance >= 1`` steps from the target: ``d - 1`` penalties,
    then +1; only penalties when the episode is truncated before the target can be reached."""
    if distance > max_steps:
        return -max_steps * step_penalty
    return 1.0 - (distance - 1) * step_penalty


def shortest_path_action(obs: np.ndarray) -> int:
    """The optimal policy, read from one observation: the neighbour of the agent's node that
    is closest to the target (the lowest row among ties)."""
    real = obs[:, 0] > 0.5
    adjacency = obs[:, 1 + NODE_FEATURES:] * real[None, :] * real[:, None]
    agent = int(np.argmax(obs[:, 1 + AGENT]))
    target = int(np.argmax(obs[:, 1 + TARGET]))
    distance = distances_to(adjacency, target).astype(np.float64)
    distance[(adjacency[agent] == 0) | (distance < 0)] = np.inf
    return int(np.argmin(distance))


class GraphNavEnv(gym.Env):
    """Target reaching on a random connected graph (see the module docstring)."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, max_nodes: int = 8, min_nodes: int | None = None, extra_edge_prob: float = 0.1,
                 step_penalty: float = 0.05, max_steps: int | None = None, render_mode: str | None = None):
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got '{render_mode}'")
        self.render_mode = render_mode
        min_nodes = max_nodes if min_nodes is None else min_nodes
        if not 2 <= min_nodes <= max_nodes:
            raise ValueError(f"need 2 <= min_nodes <= max_nodes, got min_nodes={min_nodes}, max_nodes={max_nodes}")
        max_steps = 2 * max_nodes if max_steps is None else max_steps
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        if not 0.0 <= extra_edge_prob <= 1.0 or step_penalty < 0:
            raise ValueError("need 0 <= extra_edge_prob <= 1 and step_penalty >= 0")
        self.max_nodes, self.min_nodes = max_nodes, min_nodes
        self.extra_edge_prob, self.step_penalty, self.max_steps = extra_edge_prob, step_penalty, max_steps
        self.observation_space = PaddedGraph(max_nodes, NODE_FEATURES)
        self.action_space = gym.spaces.Discrete(max_nodes)
        self.adjacency = np.zeros((0, 0), dtype=np.float32)
        self.agent = self.target = self.steps = 0

    def _random_graph(self) -> np.ndarray:
        n = int(self.np_random.integers(self.min_nodes, self.max_nodes + 1))
        # Node k joins a uniformly chosen earlier node: a random spanning tree, so connected.
        parents = np.floor(self.np_random.random(n - 1) * np.arange(1, n)).astype(np.int64)
        adjacency = np.zeros((n, n), dtype=np.float32)
        adjacency[np.arange(1, n), parents] = 1.0
        extra = np.triu(self.np_random.random((n, n)) < self.extra_edge_prob, k=1)
        adjacency = np.maximum(np.maximum(adjacency, adjacency.T), extra | extra.T)
        order = self.np_random.permutation(n)
        return adjacency[np.ix_(order, order)].astype(np.float32)

    def _set_graph(self, options: dict[str, Any]) -> None:
        adjacency = np.asarray(options["adjacency"], dtype=np.float32)
        n = adjacency.shape[0]
        if adjacency.shape != (n, n) or not 2 <= n <= self.max_nodes:
            raise ValueError(f"adjacency must be [n, n] with 2 <= n <= {self.max_nodes}, got shape {adjacency.shape}")
        if not (np.isin(adjacency, (0.0, 1.0)).all() and (adjacency == adjacency.T).all() and not adjacency.diagonal().any()):
            raise ValueError("adjacency must be symmetric 0/1 without self-loops")
        self.adjacency = adjacency
        self.agent = int(options.get("start", 0))
        self.target = int(options.get("target", n - 1))
        if not (0 <= self.agent < n and 0 <= self.target < n and self.agent != self.target):
            raise ValueError(f"start and target must be distinct nodes of 0..{n - 1}")
        if distances_to(adjacency, self.target)[self.agent] < 0:
            raise ValueError("the target cannot be reached from the start")

    def _obs(self) -> np.ndarray:
        x = np.zeros((self.adjacency.shape[0], NODE_FEATURES), dtype=np.float32)
        x[self.agent, AGENT] = 1.0
        x[self.target, TARGET] = 1.0
        return self.observation_space.pack(x, self.adjacency)

    def _info(self) -> dict[str, Any]:
        return {"distance": int(distances_to(self.adjacency, self.target)[self.agent])}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """``options={"adjacency": A, "start": s, "target": t}`` plays on a given graph; the
        info's ``"optimal_return"`` is the best return reachable from this start."""
        super().reset(seed=seed)
        self.steps = 0
        if options and "adjacency" in options:
            self._set_graph(options)
        else:
            self.adjacency = self._random_graph()
            self.agent, self.target = (int(v) for v in self.np_random.choice(self.adjacency.shape[0], 2, replace=False))
        info = self._info()
        info["optimal_return"] = optimal_return(info["distance"], self.step_penalty, self.max_steps)
        return self._obs(), info

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        action = int(action)
        if not 0 <= action < self.max_nodes:
            raise ValueError(f"action {action} is outside 0..{self.max_nodes - 1}")
        if action < self.adjacency.shape[0] and self.adjacency[self.agent, action]:
            self.agent = action
        self.steps += 1
        terminated = self.agent == self.target
        truncated = not terminated and self.steps >= self.max_steps
        reward = 1.0 if terminated else -self.step_penalty
        return self._obs(), reward, terminated, truncated, self._info()

    def render(self) -> str | None:
        """``"ansi"``: the agent, the target and the edge list as one line of text."""
        if self.render_mode != "ansi":
            return None
        rows, cols = np.nonzero(np.triu(self.adjacency, k=1))
        edges = " ".join(f"{a}-{b}" for a, b in zip(rows.tolist(), cols.tolist()))
        return f"agent {self.agent} target {self.target} step {self.steps} edges {edges}"


if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="envs.graph_nav:GraphNavEnv")
