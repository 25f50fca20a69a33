"""Metric-learning and self-supervised losses on batches of embeddings ``[B, D]``.

Each function is the paper's equation written with batched tensor operations; every loss is
averaged over the terms the equation sums, so values do not grow with the batch size.
Distances are Euclidean, ``d(a, b) = ||a - b||_2``, unless the docstring says squared.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _check_pairs(first: Tensor, second: Tensor, name: str) -> None:
    if first.dim() != 2 or first.shape != second.shape:
        raise ValueError(f"{name} needs two [B, D] batches of equal shape, got {tuple(first.shape)} "
                         f"and {tuple(second.shape)}")


def _check_temperature(temperature: float) -> None:
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


def contrastive_loss(first: Tensor, second: Tensor, similar: Tensor, margin: float = 1.0) -> Tensor:
    """Margin contrastive loss on pairs (Chopra, Hadsell & LeCun 2005; Hadsell et al. 2006, eq. 4).

    ``L = mean_i [ y_i * d_i^2 / 2 + (1 - y_i) * max(0, margin - d_i)^2 / 2 ]``
    with ``d_i = ||first_i - second_i||`` and ``y_i = 1`` for a similar pair: similar pairs are
    pulled together, dissimilar ones pushed apart until they are ``margin`` away.
    """
    _check_pairs(first, second, "contrastive_loss")
    if similar.shape != first.shape[:1]:
        raise ValueError(f"contrastive_loss needs one similar/dissimilar flag per pair, got {tuple(similar.shape)}")
    distance = (first - second).norm(dim=1)
    similar = similar.to(distance.dtype)
    return 0.5 * (similar * distance.square() + (1.0 - similar) * F.relu(margin - distance).square()).mean()


def triplet_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 0.2) -> Tensor:
    """Triplet loss (Schroff, Kalenichenko & Philbin 2015, FaceNet, eq. 2), squared distances:

    ``L = mean_i max(0, ||a_i - p_i||^2 - ||a_i - n_i||^2 + margin)``.
    """
    _check_pairs(anchor, positive, "triplet_loss")
    _check_pairs(anchor, negative, "triplet_loss")
    positive_distance = (anchor - positive).square().sum(dim=1)
    negative_distance = (anchor - negative).square().sum(dim=1)
    return F.relu(positive_distance - negative_distance + margin).mean()


def lifted_structured_loss(embeddings: Tensor, labels: Tensor, margin: float = 1.0) -> Tensor:
    """Smooth lifted structured loss (Song, Xiang, Jegelka & Savarese 2016, eq. 4).

    For every positive pair ``(i, j)``, ``i < j`` (same label), with negatives ``N``:
    ``J_ij = log( sum_{(i,k) in N} exp(margin - D_ik) + sum_{(j,l) in N} exp(margin - D_jl) ) + D_ij``
    and ``L = 1 / (2|P|) * sum_{(i,j) in P} max(0, J_ij)^2``. The log of the two sums is a
    ``logaddexp`` of per-row log-sum-exps, which keeps it stable and ``[B, B]`` in memory.
    """
    if embeddings.dim() != 2 or labels.shape != embeddings.shape[:1]:
        raise ValueError(f"lifted_structured_loss needs [B, D] embeddings and [B] labels, got "
                         f"{tuple(embeddings.shape)} and {tuple(labels.shape)}")
    same = labels[:, None] == labels[None, :]
    positive_pairs = same.triu(diagonal=1)
    if not positive_pairs.any() or same.all():
        raise ValueError("lifted_structured_loss needs a pair with the same label and two different labels")
    # Not cdist: its matrix-product shortcut is inexact for near points. The clamp keeps the
    # gradient of the (unused) zero diagonal finite.
    difference = embeddings[:, None, :] - embeddings[None, :, :]
    distance = difference.square().sum(dim=-1).clamp_min(1e-12).sqrt()
    row_terms = torch.logsumexp(torch.where(~same, margin - distance, float("-inf")), dim=1)  # [B]
    objective = torch.logaddexp(row_terms[:, None], row_terms[None, :]) + distance
    return F.relu(objective[positive_pairs]).square().sum() / (2 * positive_pairs.sum())


def n_pair_loss(anchors: Tensor, positives: Tensor) -> Tensor:
    """Multi-class N-pair loss (Sohn 2016, eq. 6), one (anchor, positive) pair per class:

    ``L = mean_i log(1 + sum_{j != i} exp(f_i . f+_j - f_i . f+_i))``, which is the softmax
    cross-entropy of the logits ``f_i . f+_j`` with target ``j = i``.
    (Sohn also adds an L2 penalty on the embeddings; add it to the total if wanted.)
    """
    _check_pairs(anchors, positives, "n_pair_loss")
    logits = anchors @ positives.T
    return F.cross_entropy(logits, torch.arange(anchors.shape[0], device=anchors.device))


def info_nce(query: Tensor, positive_key: Tensor, negative_keys: Tensor, temperature: float = 0.2) -> Tensor:
    """InfoNCE (Oord, Li & Vinyals 2018, eq. 4) with the log-bilinear score ``exp(q . k / T)``:

    ``L = -mean_i log( exp(q_i . k+_i / T) / (exp(q_i . k+_i / T) + sum_n exp(q_i . k_n / T)) )``,
    the negatives ``k_n`` ``[K, D]`` shared by all queries (MoCo's queue, He et al. 2020, eq. 1).
    Inputs are used as given; MoCo L2-normalises them first.
    """
    _check_pairs(query, positive_key, "info_nce")
    _check_temperature(temperature)
    if negative_keys.dim() != 2 or negative_keys.shape[1] != query.shape[1]:
        raise ValueError(f"info_nce needs [K, {query.shape[1]}] negative keys, got {tuple(negative_keys.shape)}")
    positive = (query * positive_key).sum(dim=1, keepdim=True)
    logits = torch.cat([positive, query @ negative_keys.T], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(query.shape[0], dtype=torch.long, device=query.device))


def nt_xent(first: Tensor, second: Tensor, temperature: float = 0.5) -> Tensor:
    """Normalised temperature-scaled cross-entropy (Chen et al. 2020, SimCLR, eq. 1).

    The 2B views ``z = [first; second]`` are compared by cosine similarity; for view ``i`` with
    partner ``j``: ``l(i, j) = -log( exp(sim(z_i, z_j) / T) / sum_{k != i} exp(sim(z_i, z_k) / T) )``,
    so each view has one positive and 2B - 2 negatives; ``L`` is the mean of ``l`` over all 2B views.
    """
    _check_pairs(first, second, "nt_xent")
    _check_temperature(temperature)
    batch = first.shape[0]
    views = F.normalize(torch.cat([first, second]), dim=1)
    logits = (views @ views.T) / temperature
    logits = logits.masked_fill(torch.eye(2 * batch, dtype=torch.bool, device=logits.device), float("-inf"))
    partners = torch.arange(2 * batch, device=logits.device).roll(batch)
    return F.cross_entropy(logits, partners)


def normalized_mse(prediction: Tensor, target: Tensor) -> Tensor:
    """BYOL's regression loss (Grill et al. 2020, eq. 2) on L2-normalised vectors:

    ``L = mean_i ||p_i/||p_i|| - z_i/||z_i|| ||^2 = mean_i (2 - 2 cos(p_i, z_i))``.
    """
    _check_pairs(prediction, target, "normalized_mse")
    return (2.0 - 2.0 * F.cosine_similarity(prediction, target, dim=1)).mean()


def negative_cosine(prediction: Tensor, target: Tensor) -> Tensor:
    """SimSiam's distance (Chen & He 2021, eq. 1): ``D(p, z) = -mean_i cos(p_i, z_i)``.

    The caller passes ``target`` detached: the stop-gradient is the method, not the loss.
    """
    _check_pairs(prediction, target, "negative_cosine")
    return -F.cosine_similarity(prediction, target, dim=1).mean()
