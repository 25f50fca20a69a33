"""The SSL methods' mechanics: MoCo's queue and momentum, BYOL's and SimSiam's gradient paths,
the shared fit loop, checkpoints and the encoder hand-over."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor

from representation.augmentations import Augmentation, IntensityJitter, RandomShift
from representation.encoders import (MLPEncoder, load_encoder_weights, make_encoder, read_encoder_file,
                                     save_encoder)
from representation.ssl import BYOL, MoCo, SimCLR, SimSiam, make_ssl_method, nt_xent

VECTOR_SPACE = spaces.Box(-np.inf, np.inf, (6,), np.float32)


class Identity(Augmentation):
    """Views equal to the input, so expected values can be computed outside the method."""

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return x


def encoder() -> MLPEncoder:
    torch.manual_seed(0)
    return MLPEncoder(VECTOR_SPACE, hidden_sizes=(16, 8))


def observations(count: int = 8, seed: int = 0) -> Tensor:
    return torch.randn(count, 6, generator=torch.Generator().manual_seed(seed))


def parameters(module: torch.nn.Module) -> list[Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def test_moco_queue_keeps_the_newest_keys_oldest_first():
    moco = MoCo(encoder(), Identity(), queue_size=6, projection_dim=4, hidden_dim=8)
    initial = moco.queue.clone()
    first, second = torch.randn(4, 4), torch.randn(4, 4)
    moco.enqueue(first)
    assert torch.equal(moco.queue, torch.cat([initial[4:], first]))
    moco.enqueue(second)
    assert torch.equal(moco.queue, torch.cat([first[2:], second]))
    assert "queue" in dict(moco.named_buffers())


def test_moco_step_enqueues_this_batch_keys_and_moves_the_key_encoder_by_the_momentum():
    momentum = 0.9
    moco = MoCo(encoder(), Identity(), queue_size=16, momentum=momentum, projection_dim=4, hidden_dim=8)
    batch = observations()
    optimizer = torch.optim.SGD([p for p in moco.parameters() if p.requires_grad], lr=0.5)
    with torch.no_grad():  # keep the key network away from the query one before the step
        for key in moco.key_encoder.parameters():
            key.add_(1.0)
    keys_before = parameters(moco.key_encoder) + parameters(moco.key_head)
    expected_keys = F.normalize(moco.key_head(moco.key_encoder(batch)), dim=1).detach()

    loss, metrics = moco.loss(batch)
    loss.backward()
    assert all(p.grad is None for p in moco.key_encoder.parameters())
    assert all(p.grad is None for p in moco.key_head.parameters())
    optimizer.step()
    moco.after_step(progress=0.5)

    queries_after = parameters(moco.encoder) + parameters(moco.head)
    for key, before, query in zip(parameters(moco.key_encoder) + parameters(moco.key_head), keys_before,
                                  queries_after):
        torch.testing.assert_close(key, momentum * before + (1 - momentum) * query)
    torch.testing.assert_close(moco.queue[-8:], expected_keys)
    assert metrics["loss"] == pytest.approx(loss.item())


def test_byol_sends_no_gradient_into_the_target_and_moves_it_on_the_cosine_schedule():
    byol = BYOL(encoder(), Identity(), projection_dim=4, hidden_dim=8, base_momentum=0.9)
    loss, _ = byol.loss(observations())
    loss.backward()
    for target in (byol.target_encoder, byol.target_projector):
        assert all(p.grad is None and not p.requires_grad for p in target.parameters())
    for online in (byol.encoder, byol.projector, byol.predictor):
        assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in online.parameters())

    with torch.no_grad():
        for p in byol.encoder.parameters():
            p.add_(0.5)
    before, online = parameters(byol.target_encoder), parameters(byol.encoder)
    byol.after_step(progress=0.5)  # tau = 1 - (1 - 0.9) * (cos(pi / 2) + 1) / 2 = 0.95
    assert byol.momentum == pytest.approx(0.95)
    for target, old, new in zip(parameters(byol.target_encoder), before, online):
        torch.testing.assert_close(target, 0.95 * old + 0.05 * new)
    byol.after_step(progress=1.0)
    assert byol.momentum == pytest.approx(1.0)


def test_simsiam_stop_gradient_leaves_only_the_predictor_path():
    simsiam = SimSiam(encoder(), Identity(), projection_dim=4, predictor_hidden_dim=3)
    assert not any(name.startswith(("target", "key")) for name, _ in simsiam.named_modules())
    # A predictor whose output ignores its input: with the stop-gradient, nothing reaches the
    # projector or the encoder; without it, the target branch would carry a gradient.
    with torch.no_grad():
        simsiam.predictor[-1].weight.zero_()
    simsiam.loss(observations())[0].backward()
    for module in (simsiam.encoder, simsiam.projector):
        assert all(p.grad is not None and not bool(p.grad.any()) for p in module.parameters())
    assert bool(simsiam.predictor[-1].bias.grad.any())


def test_simclr_loss_is_nt_xent_of_the_projected_views_and_the_head_is_separate():
    simclr = SimCLR(encoder(), Identity(), projection_dim=4, hidden_dim=8, temperature=0.3)
    batch = observations()
    projections = simclr.head(simclr.encoder(batch))
    loss, _ = simclr.loss(batch)
    torch.testing.assert_close(loss, nt_xent(projections, projections, 0.3))
    assert set(simclr.encoder.state_dict()) == set(encoder().state_dict())


def test_fit_is_reproducible_logs_and_returns_the_trained_encoder(tmp_path):
    data = observations(40)
    runs = []
    for log_dir in (tmp_path / "run", None):
        method = BYOL(encoder(), projection_dim=4, hidden_dim=8)
        start = parameters(method.encoder)
        assert method.fit(data, epochs=2, batch_size=16, lr=1e-2, log_dir=log_dir, progress=False) is method
        runs.append(parameters(method.encoder))
        assert not all(torch.equal(a, b) for a, b in zip(start, runs[-1]))
    assert all(torch.equal(a, b) for a, b in zip(*runs))
    assert list((tmp_path / "run").glob("events.out.tfevents.*"))


def test_fit_on_atari_frames_picks_shift_and_intensity():
    space = spaces.Box(0, 255, (4, 84, 84), np.uint8)
    frames = torch.randint(0, 256, (6, 4, 84, 84), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    method = SimCLR(make_encoder("nature", space, features_dim=16), projection_dim=4, hidden_dim=8)
    method.fit(frames, epochs=1, batch_size=3, progress=False)
    assert [type(a) for a in method.augmentation.augmentations] == [RandomShift, IntensityJitter]


def test_checkpoint_round_trip_and_encoder_hand_over(tmp_path):
    moco = MoCo(encoder(), queue_size=8, projection_dim=4, hidden_dim=8)
    moco.fit(observations(16), epochs=1, batch_size=8, progress=False)
    moco.save(tmp_path / "moco.pt")
    restored = MoCo(encoder(), queue_size=8, projection_dim=4, hidden_dim=8).load(tmp_path / "moco.pt")
    for name, value in moco.state_dict().items():
        assert torch.equal(value, restored.state_dict()[name]), name
    with pytest.raises(ValueError, match="holds a MoCo method"):
        BYOL(encoder()).load(tmp_path / "moco.pt")
    with pytest.raises(ValueError, match="does not fit"):
        MoCo(encoder(), queue_size=9, projection_dim=4, hidden_dim=8).load(tmp_path / "moco.pt")

    options = {"hidden_sizes": [16, 8]}
    save_encoder(moco.encoder, "mlp", options, tmp_path / "encoder.pt")
    payload = read_encoder_file(tmp_path / "encoder.pt")
    rebuilt = make_encoder(payload["name"], VECTOR_SPACE, **payload["options"])
    load_encoder_weights(rebuilt, payload)
    batch = observations(5, seed=3)
    torch.testing.assert_close(rebuilt(batch), moco.encoder(batch))


def test_registry_and_bad_input():
    assert isinstance(make_ssl_method("simsiam", encoder()), SimSiam)
    with pytest.raises(ValueError, match="unknown SSL method"):
        make_ssl_method("barlow", encoder())
    with pytest.raises(ValueError, match="bad options"):
        make_ssl_method("simclr", encoder(), queue_size=3)
    with pytest.raises(ValueError, match="needs an Encoder"):
        SimCLR(copy.deepcopy(torch.nn.Linear(2, 2)))
    with pytest.raises(ValueError, match="at least 2 observations"):
        SimCLR(encoder()).fit(observations(1), progress=False)
    with pytest.raises(ValueError, match="batch_size >= 2"):
        SimCLR(encoder()).fit(observations(), batch_size=1, progress=False)
