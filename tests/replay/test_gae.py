import pytest
import torch

from replay.gae import discounted_reward_to_go, generalized_advantages


def _brute_force_gae(r, v, term, trunc, last_v, final_v, gamma, lam):
    T, N = r.shape
    adv = torch.zeros(T, N, dtype=torch.float64)
    for e in range(N):
        for t in range(T):  # forward definition: sum of discounted deltas until the episode ends
            total, weight = 0.0, 1.0
            for k in range(t, T):
                if trunc[k, e]:
                    v_next = final_v[k, e]
                elif k + 1 < T:
                    v_next = v[k + 1, e]
                else:
                    v_next = last_v[e]
                delta = r[k, e] + gamma * v_next * (0.0 if term[k, e] else 1.0) - v[k, e]
                total += weight * delta
                if term[k, e] or trunc[k, e]:
                    break
                weight *= gamma * lam
            adv[t, e] = total
    return adv


@pytest.mark.parametrize("lam", [0.0, 0.95, 1.0])
def test_gae_matches_brute_force_with_terminations_and_truncations(lam):
    gen = torch.Generator().manual_seed(0)
    T, N = 12, 4
    r, v = torch.randn(T, N, generator=gen), torch.randn(T, N, generator=gen)
    term = torch.rand(T, N, generator=gen) < 0.15
    trunc = torch.rand(T, N, generator=gen) < 0.15
    trunc[-1, 0], term[-1, 0] = True, False  # truncated at the very last step
    last_v, final_v = torch.randn(N, generator=gen), torch.randn(T, N, generator=gen)
    got = generalized_advantages(r, v, term, trunc, last_v, final_v, 0.9, lam)
    expected = _brute_force_gae(r.double(), v.double(), term, trunc, last_v.double(),
                                final_v.double(), 0.9, lam)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)


def test_reward_to_go_by_hand():
    r = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    term = torch.tensor([[False], [True], [False], [False]])
    trunc = torch.zeros(4, 1, dtype=torch.bool)
    got = discounted_reward_to_go(r, term, trunc, torch.tensor([10.0]), torch.zeros(4, 1), 0.5)
    # episode 1: 1 + 0.5 * 2, 2; episode 2 bootstraps from last_value: 3 + 0.5 * (4 + 0.5 * 10)
    torch.testing.assert_close(got[:, 0], torch.tensor([2.0, 2.0, 7.5, 9.0]))


def test_final_values_are_read_only_where_an_episode_was_truncated():
    """The rollout buffer stores NaN where no episode was truncated and passes it on as it is."""
    gen = torch.Generator().manual_seed(1)
    T, N = 6, 3
    r, v, last_v = torch.randn(T, N, generator=gen), torch.randn(T, N, generator=gen), torch.randn(N, generator=gen)
    term = torch.rand(T, N, generator=gen) < 0.2
    trunc = torch.zeros(T, N, dtype=torch.bool)
    trunc[2, 1] = True
    final_v = torch.full((T, N), float("nan"))
    final_v[2, 1] = 0.7
    got = generalized_advantages(r, v, term, trunc, last_v, final_v, 0.9, 0.95)
    assert torch.equal(got, generalized_advantages(r, v, term, trunc, last_v, final_v.nan_to_num(), 0.9, 0.95))
    assert not got.isnan().any()
