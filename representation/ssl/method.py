"""The base of the self-supervised methods and the one training loop they all share.

A method wraps any ``Encoder``, owns its heads (and target networks), and defines
``loss(observations)``; ``fit`` trains it on a tensor of observations that stays on its device.
After training, ``method.encoder`` is what an agent uses (hand it over with
``representation.encoders.save_encoder``); heads and target networks are left behind.
"""
from __future__ import annotations

import os

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from representation.augmentations import Augmentation, default_augmentation
from representation.encoders import Encoder
from representation.files import load_tagged, save_atomic

CHECKPOINT_FORMAT = "reprl-ssl-v1"


class SSLMethod(nn.Module):
    """Self-supervised objective around an encoder.

    Subclasses implement ``loss`` and, where they keep momentum networks or queues,
    ``after_step``. ``augmentation`` makes the views; None picks
    ``default_augmentation`` for the observations' shape on the first batch.
    """

    def __init__(self, encoder: Encoder, augmentation: Augmentation | None = None):
        super().__init__()
        if not isinstance(encoder, nn.Module) or not isinstance(getattr(encoder, "out_dim", None), int):
            raise ValueError(f"{type(self).__name__} needs an Encoder (an nn.Module with an integer out_dim)")
        self.encoder = encoder
        self.augmentation = augmentation
        # Set by `fit` so that views and minibatch order are reproducible from its seed.
        self.generator: torch.Generator | None = None

    def two_views(self, observations: Tensor) -> tuple[Tensor, Tensor]:
        """Two independently augmented copies of the batch."""
        if self.augmentation is None:
            self.augmentation = default_augmentation(observations.shape[1:], observations.dtype)
        return self.augmentation(observations, self.generator), self.augmentation(observations, self.generator)

    def loss(self, observations: Tensor) -> tuple[Tensor, dict[str, float]]:  # pragma: no cover - abstract
        """Scalar loss on a minibatch of raw observations, and metrics to log (``"loss"`` included)."""
        raise NotImplementedError

    def after_step(self, progress: float) -> None:
        """Called after every optimiser step; ``progress`` is the fraction of training done, in (0, 1]."""

    def fit(self, observations: Tensor | np.ndarray, epochs: int = 10, batch_size: int = 256, lr: float = 1e-3,
            weight_decay: float = 0.0, log_dir: str | os.PathLike | None = None, progress: bool = True,
            seed: int = 0) -> SSLMethod:
        """Trains with Adam on shuffled minibatches of ``observations`` ``[N, *obs_shape]``.

        The method moves to the observations' device; the last incomplete minibatch of an epoch
        is dropped (batch statistics and negatives need full batches). With ``log_dir``, every
        metric goes to TensorBoard under ``pretrain/<name>``.
        """
        observations = torch.as_tensor(observations)
        count = observations.shape[0] if observations.dim() > 0 else 0
        if count < 2:
            raise ValueError(f"pre-training needs at least 2 observations, got {count}")
        if epochs < 1 or batch_size < 2 or lr <= 0:
            raise ValueError(f"need epochs >= 1, batch_size >= 2 and lr > 0, got {epochs}, {batch_size}, {lr}")
        batch_size = min(batch_size, count)
        steps_per_epoch = count // batch_size
        total_steps = epochs * steps_per_epoch
        device = observations.device
        self.to(device)
        self.train()
        self.generator = torch.Generator(device=device).manual_seed(seed)
        optimizer = torch.optim.Adam([p for p in self.parameters() if p.requires_grad], lr=lr,
                                     weight_decay=weight_decay)
        writer = None
        if log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter  # imported here: slow, and only for logging
            writer = SummaryWriter(str(log_dir))
        bar = tqdm(total=total_steps, desc=type(self).__name__, disable=not progress)
        step = 0
        try:
            for _ in range(epochs):
                order = torch.randperm(count, generator=self.generator, device=device)
                for start in range(0, steps_per_epoch * batch_size, batch_size):
                    loss, metrics = self.loss(observations[order[start:start + batch_size]])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    step += 1
                    self.after_step(step / total_steps)
                    bar.update()
                    bar.set_postfix(loss=f"{metrics['loss']:.4f}", refresh=False)
                    if writer is not None:
                        for name, value in metrics.items():
                            writer.add_scalar(f"pretrain/{name}", value, step)
        finally:
            bar.close()
            if writer is not None:
                writer.close()
            self.generator = None
        return self

    def save(self, path: str | os.PathLike) -> None:
        """Writes every weight, target network and queue (atomically) to resume training later.

        The optimiser state is not kept: a resumed ``fit`` starts a fresh Adam.
        """
        save_atomic({"format": CHECKPOINT_FORMAT, "method": type(self).__name__,
                     "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()}}, path)

    def load(self, path: str | os.PathLike) -> SSLMethod:
        """Loads weights written by ``save`` into this method, built the same way; returns self."""
        payload = load_tagged(path, CHECKPOINT_FORMAT, "SSL checkpoint")
        if payload["method"] != type(self).__name__:
            raise ValueError(f"'{path}' holds a {payload['method']} method, not {type(self).__name__}")
        try:
            self.load_state_dict(payload["state_dict"])
        except RuntimeError as error:
            first = str(error).strip().splitlines()[0]
            raise ValueError(f"SSL checkpoint '{path}' does not fit this method: {first}") from None
        return self
