"""Device-resident storage: replay for off-policy agents, rollouts for on-policy ones."""
from replay.batch import Batch

__all__ = ["Batch"]
