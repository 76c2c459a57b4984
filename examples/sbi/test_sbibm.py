"""Checks of examples/sbi/sbibm.py against sbibm's reference data (observations, true parameters,
reference posterior samples): the simulators, priors and likelihoods written here must be sbibm's,
or benchmark numbers computed with them mean nothing. Fast C2ST and small samples keep the whole
file to a few minutes on two cores.

    /usr/bin/python3 -m pytest -q examples/sbi/test_sbibm.py

Tests that need the data skip (with the reason) when the sbibm folder is not found.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import solve_ivp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import sbibm as S  # noqa: E402

DATA = S.data_dir(required=False)
needs_data = pytest.mark.skipif(DATA is None, reason="sbibm data folder not found (set SBIBM_DATA or put it at "
                                                     "shared/sbibm above the repository)")
ANALYTIC = [n for n in S.BENCHMARK if S.TASKS[n].analytic]
_cache = {}


def reference(task):
    if task not in _cache:
        _cache[task] = S.load_reference(task)
    return _cache[task]


# --- without the data ---------------------------------------------------------------------------

@pytest.mark.parametrize("task", list(S.TASKS))
def test_shapes_support_and_finite(task):
    t = S.TASKS[task]
    theta, x = S.simulate(task, 500, seed=3)
    assert theta.shape == (500, t.dim_theta) and x.shape == (500, t.dim_x)
    assert np.isfinite(theta).all() and np.isfinite(x).all()
    assert np.isfinite(t.log_prior(theta)).all()
    assert np.isfinite(t.log_likelihood(theta, x)).all()
    if t.bounds is not None:
        assert ((theta >= t.bounds[0]) & (theta <= t.bounds[1])).all()
    again, _ = S.simulate(task, 500, seed=3)
    assert np.array_equal(theta, again)


def test_priors_have_the_stated_moments():
    rng = np.random.default_rng(0)
    n = 200000
    gl = S.TASKS["gaussian_linear"].prior(n, rng)
    assert abs(gl.var(0).mean() - 0.1) < 0.002
    glm = S.TASKS["bernoulli_glm"]
    th = glm.prior(n, rng)
    cov = np.linalg.inv(glm.precision)
    assert np.abs(np.cov(th.T) - cov).max() < 0.03 * np.abs(cov).max()
    for name in ("sir", "lotka_volterra"):
        t = S.TASKS[name]
        lt = np.log(t.prior(n, rng))
        assert np.allclose(lt.mean(0), t.loc, atol=0.01) and np.allclose(lt.std(0), t.scale, atol=0.01)


def test_ode_solutions_match_scipy():
    """The vectorised fixed-step RK4 against scipy's DOP853 at tight tolerances, at prior draws."""
    rng = np.random.default_rng(1)
    sir = S.TASKS["sir"]
    th = sir.prior(20, rng)
    mine = sir.infected(th)
    for p, row in zip(th, mine):
        b, g = p
        f = lambda t, y: [-b * y[0] * y[1] / 1e6, b * y[0] * y[1] / 1e6 - g * y[1]]
        ref = solve_ivp(f, (0, sir.days[-1]), [1e6 - 1, 1.0], t_eval=sir.days, method="DOP853", rtol=1e-11, atol=1e-9).y[1]
        assert np.abs(1000 * row - ref / 1e3).max() < 1e-3          # in expected counts of 1000
    lv = S.TASKS["lotka_volterra"]
    th = lv.prior(20, rng)
    mine = lv.log_populations(th)
    for p, row in zip(th, mine):
        a, b, g, d = p
        f = lambda t, y: [a - b * np.exp(y[1]), -g + d * np.exp(y[0])]
        ref = solve_ivp(f, (0, lv.times[-1]), [np.log(30), 0.0], t_eval=lv.times, method="DOP853", rtol=1e-11, atol=1e-11).y
        ref = np.clip(ref.reshape(-1), np.log(1e-10), np.log(1e4))
        assert np.abs(row - ref).max() < 1e-4                         # in log population; noise is 0.1


def test_outside_prior_counts_the_draws_out_of_the_box():
    rng = np.random.default_rng(0)
    post = rng.uniform(-2, 2, size=(3, 20000, 2))   # two_moons' box is [-1, 1]^2: a quarter inside
    post[2, :10] = 0.0                                # ten draws inside ...
    before = S.outside_prior("two_moons", post)
    np.testing.assert_allclose(before, 0.75, atol=0.01)
    post[2, :10] = np.nan                             # ... become non-finite: outside
    assert S.outside_prior("two_moons", post)[2] == pytest.approx(before[2] + 10 / 20000)
    assert S.outside_prior("two_moons", rng.uniform(-1, 1, size=(2, 1000, 2))) == [0.0, 0.0]
    assert S.outside_prior("gaussian_linear", rng.normal(size=(2, 100, 10))) is None


def test_c2st_same_and_separated():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((2000, 2)), rng.standard_normal((2000, 2))
    assert abs(S.c2st(a, b, fast=True) - 0.5) < 0.03
    assert S.c2st(a, b + 6.0, fast=True) > 0.99
    assert abs(S.c2st(a, b, classifier="rf") - 0.5) < 0.04
    assert S.c2st(a, b + 6.0, classifier="rf") > 0.99
    with pytest.raises(ValueError):
        S.c2st(a, b, classifier="svm")


@pytest.mark.parametrize("task", ANALYTIC)
def test_exact_densities_agree_with_the_unnormalised_posterior(task):
    """log_posterior - (log prior + log likelihood) is one constant over the exact sampler's draws."""
    t = S.TASKS[task]
    rng = np.random.default_rng(4)
    theta, x = S.simulate(task, 3, seed=5)
    for xo in x:
        draws = t.posterior(xo, 2000, rng)
        diff = t.log_posterior(draws, xo) - t.log_posterior_unnorm(draws, xo)
        assert np.isfinite(diff).all() and diff.std() < 1e-8


@pytest.mark.parametrize("task", ["two_moons", "gaussian_mixture"])
def test_exact_densities_are_normalised(task):
    t = S.TASKS[task]
    _, x = S.simulate(task, 2, seed=6)
    for xo in x:
        # a grid fine enough for two moons' crescent (width ~0.03) over the part of the box that matters
        draws = t.posterior(xo, 20000, np.random.default_rng(7))
        lo, hi = np.maximum(draws.min(0) - 0.5, t.bounds[0]), np.minimum(draws.max(0) + 0.5, t.bounds[1])
        g = [np.linspace(l, h, 1500) for l, h in zip(lo, hi)]
        G = np.stack(np.meshgrid(*g, indexing="ij"), -1).reshape(-1, 2)
        mass = np.exp(t.log_posterior(G, xo)).sum() * np.prod([gi[1] - gi[0] for gi in g])
        assert abs(mass - 1) < 0.02, mass


def test_cli_without_data_exits_2(tmp_path):
    env = dict(os.environ, SBIBM_DATA=str(tmp_path / "nowhere"))
    r = subprocess.run([sys.executable, str(HERE / "sbibm.py"), "observations", "two_moons", str(tmp_path)],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "sbibm data folder not found" in r.stderr


def test_cli_simulate_and_c2st(tmp_path):
    py, script = sys.executable, str(HERE / "sbibm.py")
    subprocess.run([py, script, "simulate", "slcp", "300", str(tmp_path), "--seed", "2"], check=True)
    assert np.load(tmp_path / "theta.npy").shape == (300, 5) and np.load(tmp_path / "x.npy").shape == (300, 8)
    rng = np.random.default_rng(0)
    np.save(tmp_path / "s.npy", rng.standard_normal((2, 400, 2)))
    np.save(tmp_path / "r.npy", rng.standard_normal((3, 400, 2)))
    r = subprocess.run([py, script, "c2st", str(tmp_path / "s.npy"), str(tmp_path / "r.npy"), "--fast"],
                       check=True, capture_output=True, text=True)
    assert "c2st (fast" in r.stdout and "c2st mean:" in r.stdout


def test_cli_c2st_of_a_missing_file_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, str(HERE / "sbibm.py"), "c2st", str(tmp_path / "absent.npy"),
                        str(tmp_path / "r.npy"), "--fast"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "absent.npy: No such file" in r.stderr


# --- against sbibm's data -----------------------------------------------------------------------

@needs_data
def test_glm_design_and_summary_are_sbibm_s():
    """The design matrix and stimulus files are the regenerated ones, and x = Aᵀ y equals sbibm's
    (number of spikes, last 9 values of the cross-correlation of y with the stimulus padded by 8)."""
    A = np.loadtxt(DATA / "bernoulli_glm" / "design_matrix.csv", delimiter=",")
    stim = np.loadtxt(DATA / "bernoulli_glm" / "stimulus_I.csv", delimiter=",")
    assert np.abs(stim - S._stimulus()).max() < 1e-8
    assert np.abs(A - S._design_matrix(S._stimulus())).max() < 1e-8
    t = S.TASKS["bernoulli_glm"]
    y = t.spikes(t.prior(50, np.random.default_rng(8)), np.random.default_rng(9))
    for row in y:
        pad = np.concatenate([np.zeros(8), row, np.zeros(8)])
        corr = np.array([pad[k:k + 100] @ stim for k in range(len(pad) - 99)])   # torch conv1d: a cross-correlation
        assert np.allclose(row @ A, np.concatenate([[row.sum()], corr[-9:]]))


@needs_data
def test_reference_data_shapes():
    for task in S.BENCHMARK:
        t = S.TASKS[task]
        obs, theta, ref = reference(task)
        assert obs.shape == (10, t.dim_x) and theta.shape == (10, t.dim_theta) and ref.shape == (10, 10000, t.dim_theta)
        assert np.isfinite(t.log_prior(ref.reshape(-1, t.dim_theta))).all()


@needs_data
@pytest.mark.parametrize("task", S.BENCHMARK)
def test_observations_are_typical_at_the_true_parameters(task):
    """Each x_o against 2000 simulations at its θ_true (rank of its log-likelihood, or Mahalanobis
    distance for bernoulli_glm); the 10 p-values must not be rejected as U(0, 1) at 1e-3."""
    pv, ks = S.check_observations(task, n_sim=2000, data=reference(task))
    assert ks > 1e-3, (pv, ks)


@needs_data
@pytest.mark.parametrize("task", ANALYTIC)
def test_exact_posteriors_match_the_reference(task):
    t = S.TASKS[task]
    obs, _, ref = reference(task)
    rng = np.random.default_rng(10)
    ks, n = ([0, 1, 2], 3000) if t.dim_theta == 2 else ([0], 1000)
    for k in ks:
        acc = S.c2st(ref[k][:n], t.posterior(obs[k], n, rng), fast=True)
        assert acc < 0.55, (k, acc)


@needs_data
@pytest.mark.parametrize("task", S.BENCHMARK)
def test_prior_times_likelihood_matches_the_reference(task):
    """This code's prior x likelihood, reached by importance weights from a fit to half of the
    reference samples, has the other half's means and spreads (within their Monte Carlo error), and
    rejection draws from it are not told apart from them by C2ST (where enough are accepted)."""
    data = reference(task)
    small = S.TASKS[task].dim_theta == 10
    for k in (0, 1):
        r = S.check_posterior(task, k, n=1000 if small else 3000, data=data, c2st_exact=False,
                              c2st_importance=(k == 0))
        assert r["ess"] > 500 and r["z_mean"] < 4.5 and r["z_std"] < 5, r
        if k == 0 and r["n_importance"] >= 1000:
            assert r["c2st_importance"] < 0.55, r


@needs_data
def test_glm_reference_sampler_matches_sbibm_s():
    """bernoulli_glm_raw's reference posteriors come from BernoulliGLM.reference_posterior: on
    sbibm's own bernoulli_glm observations it matches sbibm's MCMC reference samples (means and
    spreads within 4.5 Monte Carlo errors on all 10; C2ST on the first)."""
    t = S.TASKS["bernoulli_glm"]
    obs, _, ref = reference("bernoulli_glm")
    n = 10000
    draws = [t.reference_posterior(obs[k], n, np.random.default_rng(k)) for k in range(10)]
    for k, d in enumerate(draws):
        z_mean = (d.mean(0) - ref[k].mean(0)) / (ref[k].std(0) * np.sqrt(2 / n))
        z_sd = np.log(d.std(0) / ref[k].std(0)) * np.sqrt(n)
        assert np.abs(z_mean).max() < 4.5 and np.abs(z_sd).max() < 4.5, (k, z_mean, z_sd)
    assert S.c2st(ref[0][:2000], draws[0][:2000], fast=True) < 0.55


@needs_data
def test_raw_glm_observations_are_spike_trains_with_their_reference():
    obs, theta, ref = S.load_reference("bernoulli_glm_raw")
    t = S.TASKS["bernoulli_glm_raw"]
    assert obs.shape == (10, 100) and set(np.unique(obs)) <= {0.0, 1.0}
    assert np.array_equal(theta, reference("bernoulli_glm")[1])
    assert ref.shape == (10, 10000, 10)
    # each reference is the posterior of its own observation: fresh draws given that observation's
    # sufficient statistic have its means (within 4.5 Monte Carlo errors), another's do not
    for k in (0, 4, 9):
        fresh = t.reference_posterior(obs[k] @ t.A, 10000, np.random.default_rng(50 + k))
        z = (fresh.mean(0) - ref[k].mean(0)) / (ref[k].std(0) * np.sqrt(2 / 10000))
        assert np.abs(z).max() < 4.5, (k, z)
        other = (fresh.mean(0) - ref[(k + 1) % 10].mean(0)) / (ref[k].std(0) * np.sqrt(2 / 10000))
        assert np.abs(other).max() > 10, (k, other)
