import torch

from cnnarch.models._layers import LocalResponseNorm


def lrn_by_the_formula(a, size, alpha, beta, k):
    """Krizhevsky et al. 2012, Section 3.3, term by term:
    b[i] = a[i] / (k + alpha * sum_{j = max(0, i - n/2)}^{min(N - 1, i + n/2)} a[j]^2) ** beta."""
    n_channels = a.shape[1]
    b = torch.empty_like(a)
    for i in range(n_channels):
        lo, hi = max(0, i - size // 2), min(n_channels - 1, i + size // 2)
        total = sum(a[:, j] ** 2 for j in range(lo, hi + 1))
        b[:, i] = a[:, i] / (k + alpha * total) ** beta
    return b


def test_lrn_is_the_papers_formula_with_alpha_per_term():
    # Large activations, so that alpha * sum is comparable to k and a wrong alpha shows.
    a = torch.randn(2, 11, 4, 4, dtype=torch.float64) * 30
    expected = lrn_by_the_formula(a, size=5, alpha=1e-4, beta=0.75, k=2.0)
    got = LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)(a)
    assert torch.allclose(got, expected, rtol=1e-12, atol=0)
    # torch's own layer with the paper's numbers divides alpha by the size: a different layer.
    plain = torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)(a)
    assert (plain - expected).abs().max() > 1e-3
