"""CURL: the loss is InfoNCE over bilinear logits; the key encoder follows by exactly tau."""
import math

import numpy as np
import pytest
import torch
from gymnasium import spaces

from replay import Batch
from representation.aux import CURL, make_aux
from representation.encoders import MLPEncoder, NatureCNN

VECTOR = spaces.Box(-1.0, 1.0, (4,), np.float32)
ACTIONS = spaces.Discrete(2)


def test_loss_is_cross_entropy_over_bilinear_logits_with_diagonal_targets():
    torch.manual_seed(0)
    encoder = MLPEncoder(VECTOR, hidden_sizes=(8,))
    curl = CURL(encoder, VECTOR, ACTIONS, projection_dim=3, noise_std=0.0)  # identity augmentation
    obs = torch.randn(5, 4)
    loss, metrics = curl.loss(Batch(obs=obs), encoder)

    with torch.no_grad():
        query = curl.projection(encoder(obs)).tolist()
        key = curl.key_projection(curl.key_encoder(obs)).tolist()
    weights = curl.bilinear.tolist()
    expected = 0.0
    for i in range(5):
        logits = [sum(query[i][a] * weights[a][b] * key[j][b] for a in range(3) for b in range(3)) for j in range(5)]
        expected += -logits[i] + math.log(sum(math.exp(value) for value in logits))
    assert loss.item() == pytest.approx(expected / 5, rel=1e-5)
    assert metrics["aux/curl_loss"].item() == pytest.approx(expected / 5, rel=1e-5)


def test_momentum_encoder_moves_by_exactly_tau():
    torch.manual_seed(0)
    encoder = MLPEncoder(VECTOR, hidden_sizes=(8,))
    curl = CURL(encoder, VECTOR, ACTIONS, tau=0.25)
    before = [p.clone() for p in curl.key_encoder.parameters()]
    before_projection = [p.clone() for p in curl.key_projection.parameters()]
    with torch.no_grad():
        for p in encoder.parameters():
            p.add_(1.0)
        for p in curl.projection.parameters():
            p.sub_(2.0)
    curl.after_update(encoder)
    for key, old in zip(curl.key_encoder.parameters(), before):
        torch.testing.assert_close(key, old + 0.25 * 1.0)
    for key, old in zip(curl.key_projection.parameters(), before_projection):
        torch.testing.assert_close(key, old - 0.25 * 2.0)
    assert not any(p.requires_grad for p in curl.key_encoder.parameters())


def test_images_are_shifted_on_their_device_and_keys_get_no_gradient():
    torch.manual_seed(0)
    space = spaces.Box(0, 255, (4, 36, 36), np.uint8)
    encoder = NatureCNN(space, features_dim=16)
    curl = make_aux("curl", encoder, space, ACTIONS, pad=4)
    obs = torch.randint(0, 256, (6, 4, 36, 36), dtype=torch.uint8)
    loss, _ = curl.loss(Batch(obs=obs), encoder)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is None for p in curl.key_encoder.parameters())
    assert encoder.fc[0].weight.grad.abs().sum() > 0 and curl.bilinear.grad.abs().sum() > 0


@pytest.mark.parametrize("space", [spaces.Discrete(5), spaces.Box(0, 9, (4,), np.int64)])
def test_observations_it_cannot_augment_are_refused(space):
    encoder = MLPEncoder(space, hidden_sizes=(4,))
    with pytest.raises(ValueError, match="curl objective needs image"):
        make_aux("curl", encoder, space, ACTIONS)


@pytest.mark.parametrize("options, message", [({"tau": 0.0}, "tau"), ({"pad": -1}, "pad"),
                                              ({"projection_dim": 0}, "projection_dim"),
                                              ({"temperature": 1.0}, "bad options")])
def test_bad_options_raise_value_errors(options, message):
    encoder = MLPEncoder(VECTOR, hidden_sizes=(4,))
    with pytest.raises(ValueError, match=message):
        make_aux("curl", encoder, VECTOR, ACTIONS, **options)


def test_unknown_objective_names_the_choices():
    with pytest.raises(ValueError, match="unknown auxiliary objective 'spr' .*curl, dbc, deepmdp"):
        make_aux("spr", MLPEncoder(VECTOR), VECTOR, ACTIONS)


def test_a_shared_anchor_uses_the_agents_latent_as_query_and_keys_the_original_observations():
    torch.manual_seed(0)
    encoder = MLPEncoder(VECTOR, hidden_sizes=(8,))
    curl = CURL(encoder, VECTOR, ACTIONS, projection_dim=3, noise_std=0.5)
    obs = torch.randn(5, 4)
    augmented_inputs = []
    augment = curl.augment
    curl.augment = lambda x: augmented_inputs.append(x) or augment(x)

    view = curl.view_for_agent(obs)
    assert view.shape == obs.shape and not torch.equal(view, obs)
    latent = encoder(view)  # the agent's own pass on the view
    torch.manual_seed(1)
    loss, _ = curl.loss(Batch(obs=view), encoder, latent)

    assert len(augmented_inputs) == 2 and augmented_inputs[1] is obs  # the key is another view of obs
    torch.manual_seed(1)
    with torch.no_grad():
        key = curl.key_projection(curl.key_encoder(augment(obs)))
    logits = curl.projection(latent) @ curl.bilinear @ key.T
    expected = torch.nn.functional.cross_entropy(logits, torch.arange(5))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert all(p.grad is not None for p in encoder.parameters())  # through the agent's latent


def test_without_a_view_or_with_share_anchor_off_the_query_is_its_own_augmented_pass():
    encoder = MLPEncoder(VECTOR, hidden_sizes=(8,))
    curl = CURL(encoder, VECTOR, ACTIONS, share_anchor=False)
    obs = torch.randn(5, 4)
    assert curl.view_for_agent(obs) is obs
    passes = []
    encoder.register_forward_hook(lambda module, inputs, output: passes.append(inputs[0]))
    curl.loss(Batch(obs=obs), encoder, latent=encoder(obs))
    assert len(passes) == 2 and passes[1] is not obs  # the agent's pass, then the query on a new view
