"""Losses against their equations: loop references and hand-made embeddings with exact values."""
from __future__ import annotations

import math

import pytest
import torch

from representation.ssl.losses import (contrastive_loss, info_nce, lifted_structured_loss, n_pair_loss,
                                       negative_cosine, normalized_mse, nt_xent, triplet_loss)


def test_nt_xent_matches_a_loop_over_the_2b_views():
    generator = torch.Generator().manual_seed(0)
    first, second = torch.randn(4, 3, generator=generator), torch.randn(4, 3, generator=generator)
    temperature = 0.3
    views = torch.cat([first, second])
    total = 0.0
    for i in range(8):
        partner = (i + 4) % 8
        def score(k: int) -> float:
            cosine = float(views[i] @ views[k] / (views[i].norm() * views[k].norm()))
            return math.exp(cosine / temperature)
        total += -math.log(score(partner) / sum(score(k) for k in range(8) if k != i))
    torch.testing.assert_close(nt_xent(first, second, temperature), torch.tensor(total / 8))


def test_nt_xent_of_identical_orthogonal_views():
    # Views are their own partners; the 2B - 2 negatives are orthogonal: cos 0.
    views = torch.eye(3)
    temperature = 0.5
    expected = -math.log(math.exp(2.0) / (math.exp(2.0) + 4 * math.exp(0.0)))
    torch.testing.assert_close(nt_xent(views, views, temperature), torch.tensor(expected))


def test_info_nce_matches_a_loop_with_shared_negatives():
    generator = torch.Generator().manual_seed(1)
    query, positive = torch.randn(3, 4, generator=generator), torch.randn(3, 4, generator=generator)
    negatives = torch.randn(5, 4, generator=generator)
    temperature = 0.2
    total = 0.0
    for i in range(3):
        positive_score = math.exp(float(query[i] @ positive[i]) / temperature)
        negative_scores = sum(math.exp(float(query[i] @ n) / temperature) for n in negatives)
        total += -math.log(positive_score / (positive_score + negative_scores))
    torch.testing.assert_close(info_nce(query, positive, negatives, temperature), torch.tensor(total / 3),
                               rtol=1e-5, atol=1e-5)


def test_contrastive_loss_on_hand_made_pairs():
    first = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    second = torch.tensor([[3.0, 4.0], [0.0, 1.0], [0.0, 3.0]])
    similar = torch.tensor([True, False, False])
    # similar at distance 5: 25 / 2; dissimilar at 1 inside margin 2: (2 - 1)^2 / 2; at 3: 0.
    torch.testing.assert_close(contrastive_loss(first, second, similar, margin=2.0), torch.tensor(13.0 / 3))


def test_triplet_loss_on_hand_made_triplets():
    anchor = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    positive = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    negative = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    # squared distances: (1, 4) -> max(0, 1 - 4 + 0.2) = 0; (4, 2) -> 4 - 2 + 0.2 = 2.2.
    torch.testing.assert_close(triplet_loss(anchor, positive, negative, margin=0.2), torch.tensor(1.1))


def test_lifted_structured_loss_on_hand_made_points():
    embeddings = torch.tensor([[0.0], [3.0], [4.0]])
    labels = torch.tensor([0, 0, 1])
    # One positive pair (0, 1) at distance 3; negatives: (0, 2) at 4 and (1, 2) at 1, margin 1.
    objective = math.log(math.exp(1 - 4) + math.exp(1 - 1)) + 3
    torch.testing.assert_close(lifted_structured_loss(embeddings, labels, margin=1.0),
                               torch.tensor(objective ** 2 / 2))


def test_lifted_structured_loss_matches_a_loop_over_pairs():
    generator = torch.Generator().manual_seed(2)
    embeddings = torch.randn(7, 3, generator=generator, dtype=torch.float64)
    labels = torch.tensor([0, 1, 0, 2, 1, 0, 2])
    margin = 1.5
    distance = lambda a, b: float((embeddings[a] - embeddings[b]).norm())  # noqa: E731
    total, pairs = 0.0, 0
    for i in range(7):
        for j in range(i + 1, 7):
            if labels[i] != labels[j]:
                continue
            negatives = sum(math.exp(margin - distance(i, k)) for k in range(7) if labels[k] != labels[i])
            negatives += sum(math.exp(margin - distance(j, l)) for l in range(7) if labels[l] != labels[j])
            total += max(0.0, math.log(negatives) + distance(i, j)) ** 2
            pairs += 1
    expected = torch.tensor(total / (2 * pairs), dtype=torch.float64)
    torch.testing.assert_close(lifted_structured_loss(embeddings, labels, margin), expected)


def test_lifted_structured_loss_gradient_is_finite_with_coincident_points():
    embeddings = torch.tensor([[1.0, 1.0], [1.0, 1.0], [0.0, 2.0]], requires_grad=True)
    lifted_structured_loss(embeddings, torch.tensor([0, 0, 1])).backward()
    assert bool(torch.isfinite(embeddings.grad).all())


def test_n_pair_loss_on_hand_made_pairs():
    anchors = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    positives = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # i = 0: f.f+_0 = 1, f.f+_1 = 1 -> log(1 + e^0); i = 1: f.f+_1 = 1, f.f+_0 = 0 -> log(1 + e^-1).
    expected = (math.log(2.0) + math.log(1 + math.exp(-1.0))) / 2
    torch.testing.assert_close(n_pair_loss(anchors, positives), torch.tensor(expected))


def test_bootstrap_regression_losses_on_hand_made_vectors():
    prediction = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    target = torch.tensor([[0.0, 2.0], [2.0, 2.0]])
    # cosines 0 and 1
    torch.testing.assert_close(normalized_mse(prediction, target), torch.tensor(1.0))
    torch.testing.assert_close(negative_cosine(prediction, target), torch.tensor(-0.5))


def test_bad_inputs_raise_value_error():
    with pytest.raises(ValueError, match="equal shape"):
        nt_xent(torch.zeros(4, 3), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(torch.ones(4, 3), torch.ones(4, 3), temperature=0.0)
    with pytest.raises(ValueError, match="negative keys"):
        info_nce(torch.ones(2, 3), torch.ones(2, 3), torch.ones(5, 4))
    with pytest.raises(ValueError, match="flag per pair"):
        contrastive_loss(torch.ones(2, 3), torch.ones(2, 3), torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="two different labels"):
        lifted_structured_loss(torch.randn(3, 2), torch.tensor([1, 1, 1]))
