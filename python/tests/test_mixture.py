"""The analytic mixture model: samples and log-densities against the exact mixture."""
import numpy as np
import pytest
from scipy.stats import multivariate_normal

import sbgm

W = np.array([0.3, 0.7])
MU = np.array([[-2.0, 0.0], [1.5, 1.0]])
COV = np.array([[[0.5, 0.1], [0.1, 0.3]], [[0.4, -0.2], [-0.2, 0.6]]])


def exact_logp(x):
    return np.log(sum(w * multivariate_normal(m, c).pdf(x) for w, m, c in zip(W, MU, COV)))


@pytest.mark.parametrize("sde", ["vp", "ve"])
def test_samples_have_the_mixtures_moments(sde):
    model = sbgm.gaussian_mixture(W, MU, COV, sde=sde)
    x = model.sample(4000, seed=1, progress=False)
    assert x.shape == (4000, 2) and x.dtype == np.float64
    mean = W @ MU
    cov = sum(w * (c + np.outer(m - mean, m - mean)) for w, m, c in zip(W, MU, COV))
    se = np.sqrt(np.diag(cov) / 4000)
    assert np.all(np.abs(x.mean(0) - mean) < 5 * se + 0.02)
    np.testing.assert_allclose(np.cov(x.T), cov, rtol=0.1, atol=0.03)
    # The same seed draws the same samples; another seed others.
    assert np.array_equal(x, model.sample(4000, seed=1, progress=False))
    assert not np.array_equal(x, model.sample(4000, seed=2, progress=False))


def test_log_prob_is_the_exact_density():
    model = sbgm.gaussian_mixture(W, MU, COV)
    x = np.array([[-2.0, 0.0], [1.0, 1.0], [0.0, 0.5], [3.0, -1.0]])
    logp = model.log_prob(x, progress=False)
    assert logp.shape == (4,)
    # Within what the method leaves: the ODE starts from the SDE's prior N(0, I) where the exact
    # p_T has mean m(T) mu, m(T) = 0.0066 for VP (about 4e-3 nats here); the solver's own error
    # is far below (rtol = atol = 1e-5).
    np.testing.assert_allclose(logp, exact_logp(x), atol=6e-3)
    # Hutchinson's estimate with its standard error brackets the same values.
    est, std = model.log_prob(x, divergence="hutchinson", probes=8, seed=3, return_std=True, progress=False)
    assert np.all(std > 0)
    assert np.all(np.abs(est - exact_logp(x)) < 5 * std + 1e-2)


def test_samples_come_with_their_exact_log_density():
    """log_prob=True: each draw's log-density from the ODE that drew it, the mixture's own up to
    the prior mismatch, the same value log_prob gives at the draw; the mean is minus the entropy."""
    model = sbgm.gaussian_mixture(W, MU, COV)
    x, logp = model.sample(1000, seed=3, log_prob=True, progress=False)
    assert x.shape == (1000, 2) and logp.shape == (1000,) and logp.dtype == np.float64
    # The prior mismatch (p_T taken as N(0, I), its mean m(T) mu) grows with |x_T|: a few
    # thousandths on average, a few hundredths for the draws furthest out.
    assert np.abs(logp - exact_logp(x)).mean() < 6e-3 and np.abs(logp - exact_logp(x)).max() < 0.03
    np.testing.assert_allclose(logp[:20], model.log_prob(x[:20], progress=False), atol=1e-3)
    # The draws are those of the ode sampler (the same prior draws, the same flow).
    plain = model.sample(1000, seed=3, sampler="ode", progress=False)
    assert np.abs(plain - x).max() < 1e-2
    # Hutchinson's estimate with its standard errors (zero where the two Rademacher probes agree up
    # to sign, as they do half the time in 2-D); unbiased over the draws.
    _, h, std = model.sample(1000, seed=3, log_prob=True, divergence="hutchinson", probes=2, return_std=True,
                             progress=False)
    assert np.all(std >= 0) and np.mean(std > 0) > 0.3
    assert abs(np.mean(h - logp)) < 4 * np.std(h - logp) / np.sqrt(1000) + 1e-3
    with pytest.raises(ValueError, match="ask for the ode sampler"):
        model.sample(10, sampler="em", log_prob=True, progress=False)
    with pytest.raises(ValueError, match="return_std goes with log_prob"):
        model.sample(10, return_std=True, progress=False)
    with pytest.raises(ValueError, match="probes must be at least 1"):
        model.sample(10, log_prob=True, divergence="hutchinson", probes=0, progress=False)
    with pytest.raises(ValueError, match="divergence"):
        model.sample(10, log_prob=True, divergence="laplace", progress=False)
    # a mixture has no box whose share draws could estimate
    with pytest.raises(ValueError, match="no such box"):
        model.sample(10, log_prob=True, support_draws=500, progress=False)
    with pytest.raises(ValueError, match="support_draws go with the samples' log-densities"):
        model.sample(10, support_draws=500, progress=False)
    with pytest.raises(ValueError, match="no such box"):
        model.log_prob(x[:3], support_draws=500, progress=False)


def test_variational_bound_is_tight_for_the_exact_score():
    model = sbgm.gaussian_mixture(W, MU, COV)
    x = model.sample(50, seed=2, progress=False)
    for bound in ("elbo", "elbo-dsm"):
        est, std = model.log_prob(x, bound=bound, draws=400, seed=1, return_std=True, progress=False)
        assert est.shape == (50,) and np.all(std > 0)
        # The mean over rows within 4 standard errors of the exact mean log-density.
        assert abs((est - exact_logp(x)).mean()) < 4 * np.sqrt((std ** 2).sum()) / 50 + 1e-2, bound
    with pytest.raises(ValueError, match="iwae"):
        model.log_prob(x, bound="iwae", progress=False)
    with pytest.raises(ValueError, match="draws"):
        model.log_prob(x, bound="elbo", draws=0, progress=False)


def test_samplers_by_name_and_progress_callback():
    model = sbgm.gaussian_mixture(W, MU, COV)
    calls = []
    for sampler, steps in [("em", 300), ("ode", None), ("edm", 30), ("pc", 200), ("ancestral", 300), ("ddim", 100),
                           ("dpmpp2m", None), ("dpmpp3m", 20), ("unipc", 20)]:
        x = model.sample(500, sampler=sampler, steps=steps, progress=lambda d, t: calls.append((d, t)))
        assert x.shape == (500, 2) and np.isfinite(x).all()
        assert abs(x[:, 0].mean() - (W @ MU)[0]) < 0.35, sampler
    assert calls and all(0 <= d <= t for d, t in calls)


def test_few_step_solver_options():
    """lam, schedule, eta, order and ode_range reach the samplers: the reverse SDE by dpmpp2m and
    by unipc (lam 0, also with an ODE range) and unipc on the adaptive schedule draw the mixture's
    moments; the same seed with lam
    1 (the ODE) draws other samples; bad values are ValueErrors naming the option."""
    model = sbgm.gaussian_mixture(W, MU, COV)
    mean = W @ MU
    cov = sum(w * (c + np.outer(m - mean, m - mean)) for w, m, c in zip(W, MU, COV))
    x = model.sample(4000, sampler="dpmpp2m", steps=50, lam=0.0, seed=1, progress=False)
    assert np.all(np.abs(x.mean(0) - mean) < 5 * np.sqrt(np.diag(cov) / 4000) + 0.02)
    np.testing.assert_allclose(np.cov(x.T), cov, rtol=0.1, atol=0.03)
    assert not np.array_equal(x, model.sample(4000, sampler="dpmpp2m", steps=50, lam=1.0, seed=1, progress=False))
    u = model.sample(4000, sampler="unipc", steps=30, lam=0.0, seed=3, progress=False)
    assert np.all(np.abs(u.mean(0) - mean) < 5 * np.sqrt(np.diag(cov) / 4000) + 0.02)
    np.testing.assert_allclose(np.cov(u.T), cov, rtol=0.1, atol=0.03)
    y = model.sample(500, sampler="ddim", steps=30, eta=1.0, schedule="time", progress=False)
    z = model.sample(500, sampler="unipc", steps=10, order=3, schedule="karras", progress=False)
    assert np.isfinite(y).all() and np.isfinite(z).all()
    a = model.sample(4000, sampler="unipc", steps=20, schedule="adaptive", seed=2, progress=False)
    assert np.all(np.abs(a.mean(0) - mean) < 5 * np.sqrt(np.diag(cov) / 4000) + 0.02)
    np.testing.assert_allclose(np.cov(a.T), cov, rtol=0.1, atol=0.03)
    r = model.sample(4000, sampler="unipc", steps=30, lam=0.0, ode_range=(0.3, 1.0), seed=3, progress=False)
    assert np.all(np.abs(r.mean(0) - mean) < 5 * np.sqrt(np.diag(cov) / 4000) + 0.02)
    np.testing.assert_allclose(np.cov(r.T), cov, rtol=0.1, atol=0.03)
    assert not np.array_equal(r, u)
    # A range over every step is the ODE's run (the same prior draws, no noise left).
    np.testing.assert_array_equal(model.sample(500, sampler="unipc", lam=0.0, ode_range=(0.0, 1e300), seed=3, progress=False),
                                  model.sample(500, sampler="unipc", seed=3, progress=False))
    with pytest.raises(ValueError, match="ode_range applies with lam below 1"):
        model.sample(10, sampler="unipc", ode_range=(0.3, 1.0), progress=False)
    for bad in [(1.0, 0.3), (0.0, 0.0)]:
        with pytest.raises(ValueError, match="ode_range: the low noise level"):
            model.sample(10, sampler="unipc", lam=0.0, ode_range=bad, progress=False)
    with pytest.raises(ValueError, match="ode_range must be two numbers"):
        model.sample(10, sampler="unipc", lam=0.0, ode_range=(0.3,), progress=False)
    with pytest.raises(ValueError, match="lam must lie in"):
        model.sample(10, sampler="dpmpp2m", lam=1.5, progress=False)
    with pytest.raises(ValueError, match="lam applies to"):
        model.sample(10, sampler="pc", lam=0.5, progress=False)
    with pytest.raises(ValueError, match="schedule"):
        model.sample(10, sampler="dpmpp2m", schedule="cubic", progress=False)
    with pytest.raises(ValueError, match="order"):
        model.sample(10, sampler="unipc", order=7, progress=False)


def test_repr_and_properties():
    model = sbgm.gaussian_mixture(W, MU, COV)
    assert model.data_shape == (2,) and model.cond_dim == 0 and model.step == 0 and model.parameter_count == 0
    assert "analytic mixture" in repr(model)


def test_inpaint_gives_the_gaussian_conditional():
    # One Gaussian, correlation 0.8: x1 | x0 = a is N(0.8 a, 0.36); noisy observations of both
    # features (denoising) give the Gaussian posterior N(S (S + s^2 I)^-1 y, S - S (S + s^2 I)^-1 S).
    cov = np.array([[1.0, 0.8], [0.8, 1.0]])
    model = sbgm.gaussian_mixture([1.0], [[0.0, 0.0]], [cov])
    observed = np.array([[1.0, np.nan], [-0.5, np.nan]])
    x = model.inpaint(observed, [1.0, 0.0], n=3000, seed=1, progress=False)
    assert x.shape == (2, 3000, 2)
    np.testing.assert_array_equal(x[:, :, 0], np.array([[1.0], [-0.5]]) * np.ones((1, 3000)))
    for row, a in enumerate([1.0, -0.5]):
        se = 0.6 / np.sqrt(3000)
        assert abs(x[row, :, 1].mean() - 0.8 * a) < 5 * se + 0.01
        assert abs(x[row, :, 1].std() - 0.6) < 0.05
    y = np.array([[0.7, -0.3]])
    s2 = 0.25
    gain = cov @ np.linalg.inv(cov + s2 * np.eye(2))
    d = model.inpaint(y, noise_std=0.5, n=3000, seed=2, progress=False)
    assert d.shape == (1, 3000, 2)
    np.testing.assert_allclose(d[0].mean(0), gain @ y[0], atol=0.05)
    np.testing.assert_allclose(np.cov(d[0].T), cov - gain @ cov, atol=0.03)
    # What the request cannot be: no mask without noise, the replace method with noise.
    with pytest.raises(ValueError, match="noise std > 0"):
        model.inpaint(y, progress=False)
    with pytest.raises(ValueError, match="exact observations"):
        model.inpaint(y, [1.0, 0.0], noise_std=0.5, method="replace", progress=False)
    with pytest.raises(ValueError, match="only 0 and 1"):
        model.inpaint(y, [0.5, 0.0], progress=False)


def test_bits_per_dim_and_the_dequantised_bound_of_integer_data():
    # 64 levels mapped onto [-6.4, 6.4] (0.2 per level) under a standard normal: in levels, a
    # Gaussian of mean 32 and sd 5, so the bound E_u log p(z) + log 0.2 is E_u of that Gaussian's
    # log-density at k + u (by quadrature over u), estimated from one draw of u per row.
    from scipy.stats import norm

    model = sbgm.gaussian_mixture([1.0], [[0.0]], [[[1.0]]], sde="vp")
    k = np.repeat(np.arange(20, 45, dtype=np.float64), 200).reshape(-1, 1)
    u = (np.arange(1000) + 0.5) / 1000
    expected = norm.logpdf(k[:, :1] + u, 32, 5).mean(1)
    bound = model.log_prob(k, dequantize=True, levels=64, dequantize_range=(-6.4, 6.4), progress=False)
    assert abs(bound.mean() - expected.mean()) < 0.01  # its Monte-Carlo error is about 0.002
    # Bits per dimension of the same bound (the same seed: the same dequantisation).
    bits = model.log_prob(k, dequantize=True, levels=64, dequantize_range=(-6.4, 6.4), bits_per_dim=True,
                          progress=False)
    np.testing.assert_allclose(bits, -bound / np.log(2.0), rtol=1e-12)
    with pytest.raises(ValueError, match="go with dequantize"):
        model.log_prob(k, levels=64, progress=False)
    with pytest.raises(ValueError, match="integer"):
        model.log_prob(k + 0.5, dequantize=True, levels=64, progress=False)
