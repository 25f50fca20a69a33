"""Score normalisation, so returns of different environments can be pooled into one aggregate.

normalised = (return - low) / (high - low), where (low, high) is, in order of preference:

0. Bounds the caller gives for that environment id.
1. Atari: (random, human) scores, the human-normalised score of Mnih et al. 2015 (random and
   human scores as tabulated by rliable / DQN Zoo, from Badia et al. 2020, Agent57).
2. Environments with known return bounds (``KNOWN_BOUNDS``): 0 is the worst return a policy
   gets and 1 the best attainable.
3. Otherwise the lowest and highest final return observed over all runs of that environment
   (every agent, every seed): the scores are then relative to this comparison only.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

# game: (random score, human score).
ATARI_RANDOM_HUMAN: dict[str, tuple[float, float]] = {
    "Alien": (227.8, 7127.7), "Amidar": (5.8, 1719.5), "Assault": (222.4, 742.0),
    "Asterix": (210.0, 8503.3), "Asteroids": (719.1, 47388.7), "Atlantis": (12850.0, 29028.1),
    "BankHeist": (14.2, 753.1), "BattleZone": (2360.0, 37187.5), "BeamRider": (363.9, 16926.5),
    "Berzerk": (123.7, 2630.4), "Bowling": (23.1, 160.7), "Boxing": (0.1, 12.1),
    "Breakout": (1.7, 30.5), "Centipede": (2090.9, 12017.0), "ChopperCommand": (811.0, 7387.8),
    "CrazyClimber": (10780.5, 35829.4), "Defender": (2874.5, 18688.9),
    "DemonAttack": (152.1, 1971.0), "DoubleDunk": (-18.6, -16.4), "Enduro": (0.0, 860.5),
    "FishingDerby": (-91.7, -38.7), "Freeway": (0.0, 29.6), "Frostbite": (65.2, 4334.7),
    "Gopher": (257.6, 2412.5), "Gravitar": (173.0, 3351.4), "Hero": (1027.0, 30826.4),
    "IceHockey": (-11.2, 0.9), "Jamesbond": (29.0, 302.8), "Kangaroo": (52.0, 3035.0),
    "Krull": (1598.0, 2665.5), "KungFuMaster": (258.5, 22736.3),
    "MontezumaRevenge": (0.0, 4753.3), "MsPacman": (307.3, 6951.6),
    "NameThisGame": (2292.3, 8049.0), "Phoenix": (761.4, 7242.6), "Pitfall": (-229.4, 6463.7),
    "Pong": (-20.7, 14.6), "PrivateEye": (24.9, 69571.3), "Qbert": (163.9, 13455.0),
    "Riverraid": (1338.5, 17118.0), "RoadRunner": (11.5, 7845.0), "Robotank": (2.2, 11.9),
    "Seaquest": (68.4, 42054.7), "Skiing": (-17098.1, -4336.9), "Solaris": (1236.3, 12326.7),
    "SpaceInvaders": (148.0, 1668.7), "StarGunner": (664.0, 10250.0), "Surround": (-10.0, 6.5),
    "Tennis": (-23.8, -8.3), "TimePilot": (3568.0, 5229.2), "Tutankham": (11.4, 167.6),
    "UpNDown": (533.4, 11693.2), "Venture": (0.0, 1187.5), "VideoPinball": (0.0, 17667.9),
    "WizardOfWor": (563.5, 4756.5), "YarsRevenge": (3092.9, 54576.9), "Zaxxon": (32.5, 9173.3),
}
_ATARI_BY_KEY = {game.lower(): game for game in ATARI_RANDOM_HUMAN}

# env id: (worst, best) episode return.
KNOWN_BOUNDS: dict[str, tuple[float, float]] = {
    "CartPole-v0": (0.0, 200.0),      # +1 per step, 200-step limit
    "CartPole-v1": (0.0, 500.0),      # +1 per step, 500-step limit
    "Acrobot-v1": (-500.0, 0.0),      # -1 per step until the swing-up, 500-step limit
    # -1 per step until the flag, 200-step limit. No policy reaches the flag in fewer than
    # about 85 steps and good ones average about -100 over start states, so -100 is "solved";
    # a better average scores a little above 1.
    "MountainCar-v0": (-200.0, -100.0),
    # Cost theta^2 + 0.1 theta_dot^2 + 0.001 u^2 per step over 200 steps. Its theoretical
    # minimum (about -3250) is never seen; an untrained policy scores about -1200 to -1600,
    # so -1600 is the floor (worse returns score below 0) and 0, upright from the start, the top.
    "Pendulum-v1": (-1600.0, 0.0),
}


@dataclass(frozen=True)
class Normalizer:
    """How one environment's returns become normalised scores."""

    method: str   # "atari_human", "known_bounds" or "observed"
    low: float    # return that scores 0
    high: float   # return that scores 1

    def __call__(self, returns: np.ndarray) -> np.ndarray:
        # A degenerate observed range (every run returned the same) scores everything 0.
        scale = self.high - self.low if self.high != self.low else 1.0
        return (np.asarray(returns, dtype=np.float64) - self.low) / scale


def atari_game(env_id: str) -> str | None:
    """The Atari game an env id names ("ALE/Pong-v5", "PongNoFrameskip-v4", "pong",
    "ms_pacman"), or None when it names no game of the table."""
    name = env_id.split("/")[-1]
    name = re.sub(r"-v\d+$", "", name)
    name = re.sub(r"(NoFrameskip|Deterministic)$", "", name)
    return _ATARI_BY_KEY.get(name.replace("_", "").replace("-", "").lower())


def normalizer_for(env_id: str, observed_returns: np.ndarray,
                   bounds: Mapping[str, tuple[float, float]] | None = None) -> Normalizer:
    """The normaliser of ``env_id``: ``bounds`` given by the caller first, then the Atari table,
    then ``KNOWN_BOUNDS``, then the observed min/max of ``observed_returns`` (all its runs)."""
    if bounds and env_id in bounds:
        low, high = bounds[env_id]
        if not high > low:
            raise ValueError(f"bounds for {env_id} must have high > low, got ({low}, {high})")
        return Normalizer("given_bounds", float(low), float(high))
    game = atari_game(env_id)
    if game is not None:
        return Normalizer("atari_human", *ATARI_RANDOM_HUMAN[game])
    if env_id in KNOWN_BOUNDS:
        return Normalizer("known_bounds", *KNOWN_BOUNDS[env_id])
    observed = np.asarray(observed_returns, dtype=np.float64)
    if observed.size == 0:
        raise ValueError(f"no returns observed for {env_id} to normalise by")
    return Normalizer("observed", float(observed.min()), float(observed.max()))
