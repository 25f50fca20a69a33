"""Linear probe: ridge regression and R^2 against brute-force references, the probe on CartPole
states, and the Atari RAM path's frames against the training env's frames."""
import numpy as np
import pytest
import torch
from torch import Tensor, nn

from envs import make_env
from representation.encoders import Encoder
from representation.ssl.collect import collect_frames, state_ground_truth
from representation.ssl.probe import (AtariRamEnv, RamPositions, fit_linear_probe, probe_encoders, probe_table,
                                      r2_score, ridge_regression)


class IdentityEncoder(Encoder):
    """Features = the state itself: a perfect linear read-out exists."""

    def __init__(self, dim: int):
        super().__init__()
        self.out_dim = dim

    def forward(self, obs: Tensor) -> Tensor:
        return obs.float()


class ConstantEncoder(Encoder):
    """Features carry no information about the observation."""

    def __init__(self, dim: int = 8):
        super().__init__()
        self.out_dim = dim
        self.value = nn.Parameter(torch.ones(dim))

    def forward(self, obs: Tensor) -> Tensor:
        return self.value.expand(obs.shape[0], -1)


def random_problem(n=40, f=5, t=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, f)) * rng.uniform(0.5, 3, size=f) + rng.normal(size=f)
    y = x @ rng.normal(size=(f, t)) + rng.normal(size=t) + 0.3 * rng.normal(size=(n, t))
    return x, y


def test_ridge_without_penalty_is_least_squares_with_a_bias_column():
    x, y = random_problem()
    weights, bias = ridge_regression(torch.tensor(x), torch.tensor(y), l2=0.0)
    solution = np.linalg.lstsq(np.hstack([x, np.ones((len(x), 1))]), y, rcond=None)[0]
    np.testing.assert_allclose(weights.numpy(), solution[:-1], rtol=0, atol=1e-10)
    np.testing.assert_allclose(bias.numpy(), solution[-1], rtol=0, atol=1e-10)


@pytest.mark.parametrize("l2", [0.5, 7.0])
def test_ridge_matches_the_augmented_least_squares_with_an_unpenalised_bias(l2):
    # min |X W + b - Y|^2 + l2 |W|^2  ==  lstsq of [X 1; sqrt(l2) I 0] [W; b] = [Y; 0]
    x, y = random_problem(seed=1)
    f = x.shape[1]
    design = np.vstack([np.hstack([x, np.ones((len(x), 1))]), np.hstack([np.sqrt(l2) * np.eye(f), np.zeros((f, 1))])])
    solution = np.linalg.lstsq(design, np.vstack([y, np.zeros((f, y.shape[1]))]), rcond=None)[0]
    weights, bias = ridge_regression(torch.tensor(x), torch.tensor(y), l2=l2)
    np.testing.assert_allclose(weights.numpy(), solution[:-1], rtol=0, atol=1e-10)
    np.testing.assert_allclose(bias.numpy(), solution[-1], rtol=0, atol=1e-10)


def test_r2_by_hand():
    targets = torch.tensor([[1.0, 2.0, 5.0], [2.0, 2.0, 5.0], [3.0, 4.0, 5.0], [4.0, 4.0, 5.0]])
    predictions = torch.tensor([[1.0, 3.0, 5.0], [2.0, 3.0, 5.0], [3.0, 3.0, 5.0], [5.0, 3.0, 5.0]])
    # column 0: SS_res = 1, SS_tot = 5; column 1 predicts the mean: R^2 = 0; column 2 is constant: undefined
    r2 = r2_score(predictions, targets)
    assert r2[0].item() == pytest.approx(0.8, abs=1e-12)
    assert r2[1].item() == 0.0
    assert r2[2].isnan()
    assert r2_score(targets, targets)[:2].tolist() == [1.0, 1.0]


def test_probe_recovers_exact_linear_targets():
    x, _ = random_problem(n=200, f=6, seed=2)
    y = x[:, :3] @ np.array([[1.0, -2.0], [0.5, 0.0], [0.0, 3.0]]) + 4.0
    fit = fit_linear_probe(torch.tensor(x), torch.tensor(y))
    assert fit.r2.min().item() > 1 - 1e-6
    assert fit.l2 == pytest.approx(1e-5 * 160)  # the smallest penalty wins on noise-free data; 160 training rows


def constant_feature_r2(y: np.ndarray, n_train: int) -> np.ndarray:
    """A probe on constant features predicts the training mean: R^2 on the held-out rows, by hand."""
    test = y[n_train:]
    return 1 - ((test - y[:n_train].mean(0)) ** 2).sum(0) / ((test - test.mean(0)) ** 2).sum(0)


def test_probe_on_constant_features_scores_the_training_mean_on_the_last_rows():
    # A trend makes the held-out mean differ from the training mean, so the split's rows matter.
    y = np.arange(100, dtype=float)[:, None] * np.array([1.0, -0.5]) + np.random.default_rng(3).normal(size=(100, 2))
    fit = fit_linear_probe(torch.ones(100, 4, dtype=torch.float64), torch.tensor(y))
    np.testing.assert_allclose(fit.r2.numpy(), constant_feature_r2(y, 80), rtol=0, atol=1e-9)
    assert (fit.r2 < -1).all()


def test_probe_needs_enough_rows():
    with pytest.raises(ValueError, match="at least 10 rows"):
        fit_linear_probe(torch.ones(6, 2), torch.ones(6, 1))


def test_probe_on_cartpole_states():
    env = make_env("CartPole-v1", 4, seed=5)
    data = collect_frames(env, 1000, seed=5, ground_truth=state_ground_truth)
    env.close()
    assert torch.equal(data.truth, data.obs.float())
    names = ["x", "x_dot", "theta", "theta_dot"]
    encoders = {"identity": IdentityEncoder(4), "constant": ConstantEncoder()}
    results = probe_encoders(encoders, data.obs, data.truth, names)
    assert min(results["identity"][name] for name in names) > 0.999999
    expected = constant_feature_r2(data.truth.double().numpy(), 800)
    np.testing.assert_allclose([results["constant"][name] for name in names], expected, rtol=0, atol=1e-9)
    assert all(abs(value) < 0.05 for value in expected)  # held-out CartPole states have about the training mean
    assert results["constant"]["mean"] == pytest.approx(float(expected.mean()), abs=1e-9)
    table = probe_table(results).splitlines()
    assert table[0].split() == ["variable", "identity", "constant"] and len(table) == 6
    assert table[1].split()[:2] == ["x", "1.000"]


def test_atari_ram_env_gives_the_training_frames_and_the_live_ram():
    from ale_py import AtariVectorEnv

    # The training env (envs/atari.py) with no-op starts off, so both start from the same state.
    training = AtariVectorEnv("pong", 2, stack_num=4, frameskip=4, maxpool=True, noop_max=0, use_fire_reset=False,
                              repeat_action_probability=0.0, reward_clipping=False, autoreset_mode="SameStep")
    probing = AtariRamEnv("pong", 2, noop_max=0)
    expected, _ = training.reset(seed=0)
    frames = probing.reset(seed=0)
    truth = RamPositions("pong")
    assert truth.names == ["player_y", "enemy_y", "ball_x", "ball_y"]
    actions = torch.randint(6, (40, 2), generator=torch.Generator().manual_seed(0))
    for action in actions:
        assert np.array_equal(frames.numpy(), expected)
        ram = np.stack([env.unwrapped.ale.getRAM() for env in probing.env.envs])
        assert np.array_equal(truth(probing, frames).numpy(), ram[:, [51, 50, 49, 54]])
        expected = training.step(action.numpy())[0]
        frames = probing.step(action)[0]
    assert frames.dtype == torch.uint8 and frames.shape == (2, 4, 84, 84)
    training.close()
    probing.close()


def test_unannotated_game_is_refused():
    with pytest.raises(ValueError, match="no RAM annotations for 'tennis'"):
        RamPositions("tennis")
