"""The shared parts: model files, TensorBoard logging, and the checks on data and labels."""
from __future__ import annotations

import pytest
import torch

from representation.generative import (DDPM, GAN, NICE, RBM, VAE, GenerativeModel, HopfieldNetwork,
                                       RealNVP)

MODELS = {
    "vae": lambda: VAE((3,), latent_dim=2, hidden_sizes=(8,), beta=2.0, num_classes=2),
    "conv_vae": lambda: VAE((1, 36, 36), latent_dim=2, likelihood="bernoulli", features_dim=16),
    "gan": lambda: GAN((3,), latent_dim=2, hidden_sizes=(8,), loss="minimax"),
    "dcgan": lambda: GAN((1, 8, 8), latent_dim=2, width=4, loss="wgan_gp", num_classes=2),
    "ddpm": lambda: DDPM((3,), timesteps=5, schedule="cosine", hidden_sizes=(8,), time_dim=4),
    "realnvp": lambda: RealNVP((3,), num_layers=2, hidden_sizes=(8,)),
    "nice": lambda: NICE((3,), num_layers=2, hidden_sizes=(8,)),
    "hopfield": lambda: HopfieldNetwork(6).store(torch.tensor([[1.0, -1, 1, -1, 1, -1]])),
    "rbm": lambda: RBM(3, num_hidden=2),
}


def labels_for(model: GenerativeModel, n: int) -> torch.Tensor | None:
    return torch.arange(n) % model.num_classes if model.num_classes else None


@pytest.mark.parametrize("name", list(MODELS))
def test_save_and_load_give_back_the_same_model(name: str, tmp_path) -> None:
    torch.manual_seed(0)
    model = MODELS[name]()
    with torch.no_grad():  # move every weight off its initial value
        for parameter in model.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    model.eval()
    model.save(tmp_path / "model.pt")
    loaded = GenerativeModel.load(tmp_path / "model.pt")
    assert type(loaded) is type(model) and loaded.config == model.config
    for (key, a), (key_b, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert key == key_b and torch.equal(a, b)
    labels = labels_for(model, 4)
    torch.manual_seed(1)
    expected = model.sample(4, labels)
    torch.manual_seed(1)
    assert torch.equal(loaded.sample(4, labels), expected)
    assert type(type(model).load(tmp_path / "model.pt")) is type(model)


def test_load_refuses_other_classes_and_other_files(tmp_path) -> None:
    RealNVP((2,)).save(tmp_path / "flow.pt")
    with pytest.raises(ValueError, match="holds a RealNVP, not a VAE"):
        VAE.load(tmp_path / "flow.pt")
    with pytest.raises(ValueError, match="does not exist"):
        VAE.load(tmp_path / "missing.pt")
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a reprl generative model file"):
        GenerativeModel.load(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="corrupt"):
        GenerativeModel.load(tmp_path / "junk.pt")


def test_fit_logs_every_metric_to_tensorboard(tmp_path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    torch.manual_seed(0)
    GAN((2,), latent_dim=2, hidden_sizes=(8,)).fit(torch.randn(20, 2), epochs=2, batch_size=10,
                                                   log_dir=tmp_path, progress=False)
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert set(events.Tags()["scalars"]) == {"GAN/critic_loss", "GAN/generator_loss"}
    assert [event.step for event in events.Scalars("GAN/critic_loss")] == [1, 2, 3, 4]


def test_seeded_fits_are_reproducible() -> None:
    data = torch.randn(30, 2)
    fitted = []
    for seed in (3, 3, 4):
        torch.manual_seed(7)  # the same initial weights each time
        fitted.append(VAE((2,), hidden_sizes=(8,)).fit(data, epochs=2, batch_size=8, progress=False, seed=seed))
    weights = [torch.cat([p.flatten() for p in model.parameters()]) for model in fitted]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])


@pytest.mark.parametrize("data, labels, message", [
    (torch.zeros(4, 3), None, r"shape \[N>0, 2\]"),
    (torch.zeros(0, 2), None, r"shape \[N>0, 2\]"),
    ([[0.0, 1.0]], None, "must be a torch.Tensor"),
    (torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), "unconditional"),
])
def test_fit_refuses_bad_data(data, labels, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RealNVP((2,)).fit(data, labels, progress=False)


def test_fit_refuses_bad_labels_and_budgets() -> None:
    gan = GAN((2,), num_classes=3)
    data = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="pass labels"):
        gan.fit(data, progress=False)
    with pytest.raises(ValueError, match=r"integers of shape \[4\]"):
        gan.fit(data, torch.zeros(4), progress=False)
    with pytest.raises(ValueError, match=r"integers of shape \[4\]"):
        gan.fit(data, torch.zeros(3, dtype=torch.long), progress=False)
    with pytest.raises(ValueError, match="epochs and batch_size"):
        gan.fit(data, torch.zeros(4, dtype=torch.long), epochs=0, progress=False)
