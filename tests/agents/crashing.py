"""Runs that crash after a given step, for the resume tests."""
import pytest

from agents.base import AGENT_FORMAT, Agent
from agents.checkpoint import load_checkpoint
from agents.runner import CHECKPOINT, Runner


class Crash(RuntimeError):
    pass


def crash_after(agent: Agent, steps: int) -> None:
    """Makes the agent's updates raise once ``steps`` environment steps are done."""
    original = agent.after_step

    def after_step(next_obs, step):
        if step > steps:
            raise Crash
        return original(next_obs, step)
    agent.after_step = after_step


def crash_and_checkpoint(agent: Agent, steps: int, run_dir) -> dict:
    """Runs ``agent`` in ``run_dir`` until it crashes after ``steps`` steps; its last checkpoint."""
    crash_after(agent, steps)
    with pytest.raises(Crash):
        Runner(agent, run_dir=run_dir, progress=False).run()
    return load_checkpoint(run_dir / CHECKPOINT, AGENT_FORMAT)
