"""What every generative model shares: the training loop, logging, and model files.

A model describes one optimisation step (``loss``, or ``training_step`` when it needs several
optimizers, as a GAN does); ``fit`` owns everything around it: shuffling a tensor dataset into
minibatches, the progress bar, TensorBoard scalars. A model file holds the class name, the
constructor options and the ``state_dict``; it is read back with ``torch.load(weights_only=True)``,
so loading a model never runs code.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from representation.encoders import EncoderHandOver
from representation.files import load_tagged, save_atomic

FORMAT = "reprl-generative-v1"
Model = TypeVar("Model", bound="GenerativeModel")
_MODELS: dict[str, type[GenerativeModel]] = {}


class GenerativeModel(EncoderHandOver, nn.Module):
    """Base of the generative models: ``fit(data)``, ``sample(n)``, ``save(path)`` / ``load(path)``,
    and, for those with a representation, ``export_encoder(path)`` (``EncoderHandOver``).

    Subclasses hand ``super().__init__`` their constructor arguments as ``config`` (plain
    numbers, strings, lists), so ``load`` can rebuild the model before loading its weights.
    """

    default_lr: ClassVar[float] = 1e-3
    data_shape: tuple[int, ...]
    num_classes: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _MODELS[cls.__name__] = cls

    def __init__(self, config: dict[str, Any], data_shape: Sequence[int], num_classes: int = 0):
        super().__init__()
        self.data_shape = tuple(int(d) for d in data_shape)
        if not self.data_shape or min(self.data_shape) < 1:
            raise ValueError(f"data_shape must be a non-empty shape of positive sizes, got {tuple(data_shape)}")
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        self.num_classes = int(num_classes)
        self.config = {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}

    # ----------------------------------------------------------------- one optimisation step
    def loss(self, x: Tensor, labels: Tensor | None) -> tuple[Tensor, dict[str, float]]:
        """Scalar loss of a minibatch and the metrics to log (models with one optimizer)."""
        raise NotImplementedError

    def sample(self, n: int, labels: Tensor | None = None) -> Tensor:
        """``n`` draws ``[n, *data_shape]`` from the model (``labels`` ``[n]`` for conditional models)."""
        raise NotImplementedError

    def configure_optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        return [torch.optim.Adam(self.parameters(), lr=lr)]

    def training_step(self, x: Tensor, labels: Tensor | None, optimizers: list[torch.optim.Optimizer],
                      step: int) -> dict[str, float]:
        """One update on a minibatch; ``step`` counts updates since ``fit`` began."""
        loss, metrics = self.loss(x, labels)
        optimizers[0].zero_grad(set_to_none=True)
        loss.backward()
        optimizers[0].step()
        return metrics

    # ----------------------------------------------------------------- the shared loop
    def fit(self: Model, data: Tensor, labels: Tensor | None = None, *, epochs: int = 10,
            batch_size: int = 128, lr: float | None = None, log_dir: str | os.PathLike | None = None,
            progress: bool = True, seed: int | None = None) -> Model:
        """Trains on ``data`` ``[N, *data_shape]`` (class ``labels`` ``[N]`` for conditional models).

        Minibatches are drawn without replacement from a fresh permutation every epoch; the
        dataset stays a tensor on the model's device, so no DataLoader worker is involved.
        ``seed`` seeds torch's global generator, which draws both the batch order and the model's
        noise, so a seeded fit is reproducible. ``log_dir`` writes TensorBoard scalars per update.
        """
        if epochs < 1 or batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
        data, labels = self.check_data(data, labels)
        if seed is not None:
            torch.manual_seed(seed)
        optimizers = self.configure_optimizers(self.default_lr if lr is None else float(lr))
        writer = open_writer(log_dir)
        self.train()
        step = 0
        bar = tqdm(range(epochs), desc=type(self).__name__, disable=not progress, leave=False)
        try:
            for _ in bar:
                order = torch.randperm(data.shape[0], device=data.device)
                for start in range(0, data.shape[0], batch_size):
                    index = order[start:start + batch_size]
                    metrics = self.training_step(data[index], None if labels is None else labels[index],
                                                 optimizers, step)
                    step += 1
                    if writer is not None:
                        for name, value in metrics.items():
                            writer.add_scalar(f"{type(self).__name__}/{name}", value, step)
                bar.set_postfix({name: f"{value:.4g}" for name, value in metrics.items()})
        finally:
            bar.close()
            if writer is not None:
                writer.close()
        self.eval()
        return self

    def check_data(self, data: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """Validates a dataset against the model and moves it to the model's device."""
        if not isinstance(data, Tensor):
            raise ValueError(f"data must be a torch.Tensor, got {type(data).__name__}")
        if tuple(data.shape[1:]) != self.data_shape or data.shape[0] == 0:
            raise ValueError(f"data must have shape [N>0, {', '.join(map(str, self.data_shape))}], "
                             f"got {list(data.shape)}")
        labels = self.check_labels(labels, data.shape[0])
        return data.to(self.device), labels

    def check_labels(self, labels: Tensor | None, n: int) -> Tensor | None:
        """Class labels ``[n]`` in ``[0, num_classes)``: required by conditional models, refused otherwise."""
        if self.num_classes == 0:
            if labels is not None:
                raise ValueError(f"{type(self).__name__} is unconditional (num_classes=0) but labels were given")
            return None
        if labels is None:
            raise ValueError(f"{type(self).__name__} is conditional (num_classes={self.num_classes}): pass labels")
        labels = torch.as_tensor(labels)
        if labels.shape != (n,) or labels.is_floating_point():
            raise ValueError(f"labels must be integers of shape [{n}], got {labels.dtype} {list(labels.shape)}")
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"labels must lie in [0, {self.num_classes}), got [{labels.min()}, {labels.max()}]")
        return labels.long().to(self.device)

    @property
    def device(self) -> torch.device:
        for tensor in list(self.parameters()) + list(self.buffers()):
            return tensor.device
        return torch.device("cpu")

    # ----------------------------------------------------------------- model files
    def save(self, path: str | os.PathLike) -> None:
        """Writes class name, constructor options and weights (temp file, then rename)."""
        save_atomic({"format": FORMAT, "class": type(self).__name__, "config": self.config,
                     "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()}}, path)

    @classmethod
    def load(cls: type[Model], path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Model:
        """Rebuilds a saved model; ``GenerativeModel.load`` accepts any model class."""
        payload = load_tagged(path, FORMAT, "generative model file", map_location)
        saved = _MODELS.get(payload["class"])
        if saved is None or not issubclass(saved, cls):
            raise ValueError(f"'{path}' holds a {payload['class']}, not a {cls.__name__}")
        model = saved(**payload["config"])
        model.load_state_dict(payload["state_dict"])
        return model.to(map_location).eval()


def open_writer(log_dir: str | os.PathLike | None) -> Any:
    """A TensorBoard ``SummaryWriter`` for ``log_dir``, or None when no logging was asked for."""
    if log_dir is None:
        return None
    from torch.utils.tensorboard import SummaryWriter  # imported lazily: tensorboard is slow to import
    return SummaryWriter(log_dir=str(log_dir))
