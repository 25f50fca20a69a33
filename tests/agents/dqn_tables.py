"""Fixed Q tables for exact DQN tests: Q(s, .) is a row of a table, looked up by the state index."""
import torch
from torch import nn

from agents import DQN
from replay import Batch


class TableQ(nn.Module):
    """Q(s, .) = table[s], where the observation's first entry is the state index."""

    def __init__(self, table):
        super().__init__()
        self.table = nn.Parameter(torch.tensor(table, dtype=torch.float32))

    def forward(self, obs, noise=True, encoded=False):
        return self.table[obs[:, 0].long()]

    q_values = forward


ONLINE = [[1.0, 5.0], [2.0, 0.5], [0.0, 3.0]]
TARGET = [[4.0, 2.0], [7.0, 1.0], [0.5, 6.0]]


def make_agent(**settings):
    agent = DQN.from_env("CartPole-v1", eval_episodes=1, **settings)
    agent.q, agent.q_target = TableQ(ONLINE), TableQ(TARGET)
    agent.optimizer = torch.optim.SGD(agent.q.parameters(), lr=0.1)
    return agent


def batch():
    obs = torch.tensor([[0.0, 0, 0, 0], [1, 0, 0, 0], [2, 0, 0, 0]])
    next_obs = torch.tensor([[1.0, 0, 0, 0], [2, 0, 0, 0], [0, 0, 0, 0]])
    return Batch(obs=obs, action=torch.tensor([1, 0, 1]), reward=torch.tensor([1.0, -1.0, 0.5]), next_obs=next_obs,
                 terminated=torch.tensor([0.0, 0.0, 1.0]), discount=torch.tensor([0.9, 0.81, 0.9]),
                 weights=torch.tensor([1.0, 0.5, 2.0]), indices=torch.arange(3))
