"""RealNVP and NICE: log-determinants against autograd Jacobians, exact inverses, normalised
densities, and two moons."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from representation.generative import NICE, AdditiveCoupling, AffineCoupling, RealNVP
from representation.generative.flows import alternating_mask


def randomise(module: nn.Module, seed: int, scale: float = 0.5) -> None:
    """Non-zero weights everywhere (couplings start as the identity, which would test nothing)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(scale * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))


def autograd_log_det(function, x: torch.Tensor) -> torch.Tensor:
    """log |det J| of ``function`` at each row of ``x``, from the full Jacobian."""
    rows = []
    for row in x:
        jacobian = torch.autograd.functional.jacobian(lambda v: function(v[None])[0].reshape(-1), row)
        rows.append(torch.linalg.slogdet(jacobian.reshape(row.numel(), row.numel()))[1])
    return torch.stack(rows)


def test_alternating_masks_keep_complementary_halves() -> None:
    assert alternating_mask(5, 0).tolist() == [1, 0, 1, 0, 1]
    assert alternating_mask(5, 1).tolist() == [0, 1, 0, 1, 0]


@pytest.mark.parametrize("coupling", [AffineCoupling, AdditiveCoupling])
def test_coupling_log_det_matches_autograd_and_inverts(coupling: type[nn.Module]) -> None:
    layer = coupling(alternating_mask(4, 1), (8,)).double()
    randomise(layer, seed=1)
    x = torch.randn(5, 4, dtype=torch.float64)
    y, log_det = layer(x)
    assert torch.allclose(log_det, autograd_log_det(lambda v: layer(v)[0], x), atol=1e-10)
    assert torch.equal(y[:, [1, 3]], x[:, [1, 3]])  # the masked half passes unchanged
    assert torch.allclose(layer.inverse(y), x, atol=1e-12)
    if coupling is AdditiveCoupling:
        assert torch.equal(log_det, torch.zeros(5, dtype=torch.float64))


@pytest.mark.parametrize("flow_class", [RealNVP, NICE])
def test_flow_log_det_matches_autograd_and_inverts_to_1e5(flow_class: type) -> None:
    torch.manual_seed(0)
    flow = flow_class((2, 3), num_layers=4, hidden_sizes=(16,)).double()
    randomise(flow, seed=2, scale=0.3)
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    z, log_det = flow(x)
    assert torch.allclose(log_det, autograd_log_det(lambda v: flow(v)[0], x), atol=1e-9)
    float_flow = flow.float()
    x32 = x.float()
    assert torch.allclose(float_flow.inverse(float_flow(x32)[0]), x32, atol=1e-5)
    samples = float_flow.sample(6)
    assert samples.shape == (6, 2, 3)
    assert torch.allclose(float_flow.inverse(float_flow(samples)[0]), samples, atol=1e-5)


def test_nice_log_det_is_the_final_scaling_alone() -> None:
    flow = NICE((3,), num_layers=3, hidden_sizes=(8,))
    randomise(flow, seed=3)
    _, log_det = flow(torch.randn(7, 3))
    assert torch.allclose(log_det, flow.layers[-1].log_scale.sum().expand(7))


@pytest.mark.parametrize("flow_class", [RealNVP, NICE])
def test_density_integrates_to_one(flow_class: type) -> None:
    torch.manual_seed(0)
    flow = flow_class((2,), num_layers=4, hidden_sizes=(16,)).double()
    randomise(flow, seed=4, scale=0.3)
    grid = torch.linspace(-12, 12, 801, dtype=torch.float64)
    points = torch.cartesian_prod(grid, grid)
    with torch.no_grad():
        mass = flow.log_prob(points).exp().sum() * (grid[1] - grid[0]) ** 2
    assert abs(mass.item() - 1.0) < 1e-3


def test_flows_refuse_one_dimensional_data() -> None:
    with pytest.raises(ValueError, match=">= 2 values"):
        RealNVP((1,))


@pytest.mark.parametrize("flow_class, epochs", [(RealNVP, 10), (NICE, 15)])
def test_flow_likelihood_on_two_moons_beats_a_diagonal_gaussian(flow_class: type, epochs: int, two_moons) -> None:
    data, held_out, gaussian_nll = two_moons
    torch.manual_seed(0)
    flow = flow_class((2,), num_layers=6, hidden_sizes=(64, 64))
    flow.fit(data, epochs=epochs, batch_size=100, lr=3e-3, progress=False, seed=0)
    with torch.no_grad():
        nll = -flow.log_prob(held_out).mean().item()
    # The diagonal Gaussian scores 2.00 nats; both flows reach 0.88-1.13 over seeds 0-1.
    assert nll < gaussian_nll - 0.5
