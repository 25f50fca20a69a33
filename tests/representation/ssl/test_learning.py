"""Learning test: on synthetic data whose views share only a class signal, every method learns
features on which a linear probe beats the same probe on the untrained encoder by a wide margin.

Observations are 4 signal dimensions (one of 4 class prototypes, scaled by 2, plus small noise)
followed by 60 nuisance dimensions of unit Gaussian noise. A view keeps the signal (with a little
noise) and redraws the nuisance, so only the class information is shared between two views.
The encoder ends in 8 features: at random it keeps mostly nuisance; trained, it must keep the
signal. A method that collapses, or learns nothing, stays near the random probe.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import Tensor

from representation.augmentations import Augmentation
from representation.encoders import Encoder, MLPEncoder
from representation.ssl import BYOL, MoCo, SimCLR, SimSiam

SIGNAL, NUISANCE, CLASSES = 4, 60, 4


class RedrawNuisance(Augmentation):
    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        signal = x[:, :SIGNAL] + 0.05 * torch.randn(x.shape[0], SIGNAL, generator=generator, device=x.device)
        nuisance = torch.randn(x.shape[0], NUISANCE, generator=generator, device=x.device)
        return torch.cat([signal, nuisance], dim=1)


def latent_class_data(count: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    labels = torch.randint(0, CLASSES, (count,), generator=generator)
    signal = 2.0 * torch.eye(CLASSES)[labels, :SIGNAL] + 0.1 * torch.randn(count, SIGNAL, generator=generator)
    return torch.cat([signal, torch.randn(count, NUISANCE, generator=generator)], dim=1), labels


def probe_accuracy(encoder: Encoder, train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor]) -> float:
    """Closed-form least-squares probe onto one-hot labels, accuracy on held-out data."""
    def design(x: Tensor) -> Tensor:
        with torch.no_grad():
            features = encoder(x).double()
        return torch.cat([features, torch.ones(len(features), 1, dtype=torch.float64)], dim=1)
    weights = torch.linalg.lstsq(design(train[0]), torch.eye(CLASSES, dtype=torch.float64)[train[1]]).solution
    return float(((design(test[0]) @ weights).argmax(dim=1) == test[1]).double().mean())


@pytest.mark.parametrize("method, options, epochs", [
    (SimCLR, {"hidden_dim": 64, "projection_dim": 32}, 10),
    (BYOL, {"hidden_dim": 128, "projection_dim": 32, "base_momentum": 0.99}, 20),
    (MoCo, {"hidden_dim": 64, "projection_dim": 32, "queue_size": 256, "momentum": 0.99}, 20),
    (SimSiam, {"projection_dim": 64, "predictor_hidden_dim": 16}, 40),
], ids=lambda value: value.__name__ if isinstance(value, type) else None)
def test_pretraining_beats_the_random_encoder_on_a_linear_probe(method, options, epochs):
    generator = torch.Generator().manual_seed(0)
    train, test = latent_class_data(512, generator), latent_class_data(512, generator)
    torch.manual_seed(0)
    space = spaces.Box(-np.inf, np.inf, (SIGNAL + NUISANCE,), np.float32)
    encoder = MLPEncoder(space, hidden_sizes=(64, 8))
    untrained = copy.deepcopy(encoder)

    trained = method(encoder, RedrawNuisance(), **options).fit(train[0], epochs=epochs, batch_size=64, lr=3e-3,
                                                               progress=False, seed=0).encoder

    random_accuracy, trained_accuracy = probe_accuracy(untrained, train, test), probe_accuracy(trained, train, test)
    assert random_accuracy < 0.6
    assert trained_accuracy >= 0.95 and trained_accuracy >= random_accuracy + 0.35
