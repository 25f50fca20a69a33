"""TRPO: conjugate gradient against a dense solve (one system or several stacked), Fisher-vector
products against the dense KL Hessian, the line search's acceptance rule, the KL bound after a
step, learning."""
import json

import pytest
import torch
from torch.distributions import kl_divergence
from torch.func import functional_call
from torch.nn.utils import parameters_to_vector

from agents.conjugate_gradient import conjugate_gradient
from agents.trpo import TRPO, backtracking_line_search

SMALL = dict(encoder_options={"hidden_sizes": [3], "activation": "tanh"})


def test_conjugate_gradient_solves_a_small_fisher_system_like_a_dense_solve():
    generator = torch.Generator().manual_seed(0)
    # Fisher matrix of a 4-way softmax policy over 3 states with linear logits in 6 parameters:
    # F = mean_s J_s^T (diag p_s - p_s p_s^T) J_s, plus damping.
    jacobians = torch.randn(3, 4, 6, generator=generator, dtype=torch.float64)
    probs = torch.softmax(torch.randn(3, 4, generator=generator, dtype=torch.float64), dim=-1)
    fisher = sum(j.T @ (torch.diag(p) - torch.outer(p, p)) @ j for j, p in zip(jacobians, probs)) / 3
    fisher += 0.01 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, generator=generator, dtype=torch.float64)
    x = conjugate_gradient(lambda v: fisher @ v, b, iters=6, residual_tol=0.0)
    torch.testing.assert_close(x, torch.linalg.solve(fisher, b), rtol=1e-8, atol=1e-8)
    with pytest.raises(ValueError, match="at least one iteration"):
        conjugate_gradient(lambda v: fisher @ v, b, iters=0)


def test_conjugate_gradient_solves_stacked_systems_row_by_row():
    """Three systems at once (K seeds' policies): each row is solved as if alone, and a row that
    converges at once (b = 0) stays at x = 0 while the others iterate."""
    generator = torch.Generator().manual_seed(0)
    factors = torch.randn(3, 5, 5, generator=generator, dtype=torch.float64)
    matrices = factors @ factors.transpose(1, 2) + 0.1 * torch.eye(5, dtype=torch.float64)
    b = torch.randn(3, 5, generator=generator, dtype=torch.float64)
    b[1] = 0.0
    x = conjugate_gradient(lambda v: torch.einsum("kij,kj->ki", matrices, v), b, iters=5, residual_tol=1e-20)
    for k in (0, 2):
        alone = conjugate_gradient(lambda v: matrices[k] @ v, b[k], iters=5, residual_tol=1e-20)
        torch.testing.assert_close(x[k], alone, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(x[k], torch.linalg.solve(matrices[k], b[k]), rtol=1e-6, atol=1e-8)
    assert torch.equal(x[1], torch.zeros(5, dtype=torch.float64))


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_fisher_vector_product_equals_the_dense_hessian_of_the_kl(env_id):
    agent = TRPO.from_env(env_id, cg_damping=0.1, log_std_init=-0.3, **SMALL)
    obs = torch.randn(5, agent.observation_space.shape[0], generator=torch.Generator().manual_seed(1))
    named = [(name, p) for name, p in agent.net.named_parameters() if name.startswith(("encoder.", "policy."))]
    assert [p for _, p in named] == agent.policy_params
    theta = parameters_to_vector(agent.policy_params).detach()
    with torch.no_grad():
        old = agent.net.policy(agent.net.encoder(obs))

    def mean_kl(flat: torch.Tensor) -> torch.Tensor:
        values = flat.split([p.numel() for _, p in named])
        weights = {name: v.view_as(p) for (name, p), v in zip(named, values)}
        return kl_divergence(old, functional_call(agent.net, weights, (obs,))[0]).mean()

    hessian = torch.autograd.functional.hessian(mean_kl, theta)
    vector = torch.randn(theta.numel(), generator=torch.Generator().manual_seed(2))
    product = agent.fisher_vector_product(obs)(vector)
    torch.testing.assert_close(product, hessian @ vector + 0.1 * vector, rtol=1e-4, atol=1e-5)


def test_line_search_rejects_steps_that_break_the_kl_bound_or_do_not_improve():
    tried = []

    def evaluate(fraction):  # always an improvement; KL grows with the step
        tried.append(fraction)
        return fraction, 0.05 * fraction

    assert backtracking_line_search(evaluate, max_kl=0.01, shrink=0.5, iters=10) == 0.125
    assert tried == [1.0, 0.5, 0.25, 0.125]
    assert backtracking_line_search(lambda f: (-f, 0.0), max_kl=0.01, shrink=0.5, iters=5) == 0.0
    assert backtracking_line_search(lambda f: (f, 0.05 * f), max_kl=0.01, shrink=0.5, iters=3) == 0.0


def test_line_search_keeps_each_policys_first_accepted_fraction():
    """Three policies searched together: the first accepts the full step, the second a quarter of
    it, the third never improves and stays put."""
    kl_per_unit_step = torch.tensor([0.005, 0.03, 0.0])
    gain_sign = torch.tensor([1.0, 1.0, -1.0])

    def evaluate(fraction):
        return gain_sign * fraction, kl_per_unit_step * fraction

    fractions = backtracking_line_search(evaluate, max_kl=0.01, shrink=0.5, iters=10, shape=(3,))
    assert fractions.tolist() == [1.0, 0.25, 0.0]


def test_policy_step_keeps_the_mean_kl_within_the_trust_region(tmp_path):
    agent = TRPO.from_env("CartPole-v1", steps=512, num_envs=2, num_steps=128, max_kl=0.005, eval_every=0,
                          eval_episodes=1, checkpoint_every=0)
    metrics = []
    original = agent.train_on_rollout
    agent.train_on_rollout = lambda: metrics.append(original()) or metrics[-1]
    agent.learn(run_dir=tmp_path / "run", progress=False)
    assert len(metrics) == 2
    for m in metrics:
        assert 0.0 < float(m["losses/step_fraction"]) <= 1.0
        assert 0.0 < float(m["losses/kl"]) <= 0.005
        assert float(m["losses/surrogate_gain"]) > 0.0


def test_trpo_refuses_a_shared_encoder():
    with pytest.raises(ValueError, match="separate actor and critic"):
        TRPO.from_env("CartPole-v1", shared_encoder=True)


@pytest.mark.slow
def test_trpo_learns_cartpole_within_20k_steps(tmp_path):
    """Two of three seeds evaluate at 200 or more (random play scores about 22). After 20k steps
    single seeds spread widely (172-500 over seeds 1-8 on one thread), and which seeds fall short
    moves with the rounding of the products (which library computes them, representation.linear)."""
    returns = []
    for seed in (1, 2, 3):
        TRPO.from_env("CartPole-v1", seed=seed, steps=20_000, eval_every=0).learn(
            run_dir=tmp_path / f"seed_{seed}", progress=False)
        returns.append(json.loads((tmp_path / f"seed_{seed}" / "summary.json").read_text())["eval_return_mean"])
    assert sorted(returns)[1] >= 200, returns
