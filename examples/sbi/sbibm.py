"""The eight tasks of the sbibm benchmark (Lueckmann et al. 2021) in NumPy/SciPy, its C2ST metric, and
a runner for one benchmark cell with sbgm. Used by the examples only, never by sbgm itself.

    python3 sbibm.py simulate TASK N OUT_DIR [--seed S]      # theta.npy [N, P], x.npy [N, X]
    python3 sbibm.py observations TASK OUT_DIR               # observations.npy, true_theta.npy, reference.npy
    python3 sbibm.py c2st SAMPLES.npy REFERENCE.npy [--fast] # per-observation and mean C2ST
    python3 sbibm.py run TASK BUDGET [--seed S] [--out DIR] [--obs K] [--fast-c2st] [-- SBGM-TRAIN-ARGS]
    python3 sbibm.py check TASK                              # this code against sbibm's reference data

Written from sbibm's definitions and source (github.com/sbi-benchmark/sbibm) so that a posterior
learnt from these simulators can be scored against sbibm's published reference samples. The
observations and reference samples are sbibm's own files (`--sbibm PATH`, env SBIBM_DATA, or a
`shared/sbibm` folder above this script); nothing here regenerates them.

Where this code departs from sbibm, on purpose:
- sir and lotka_volterra: sbibm solves each ODE with Julia's Tsit5 (rtol = atol = 1e-8). Here one
  fixed-step RK4 runs over all θ at once, on (S/N, log I/N) (sir, step 0.1 day) and on
  (log u, log v) (lotka_volterra, step 0.005), which keeps the solution positive and smooth.
  Against scipy's DOP853 at 1e-11: sir within 1.1e-3 of the expected count (of 1000; 300 prior
  draws and the prior's 4-sigma corners); lotka_volterra within 4e-7 in log u, log v at 300 prior
  draws and 3e-4 at its 3.5-sigma corners (the observation noise is 0.1).
  10^5 simulations take about 6 s (sir) and 15 s (lotka_volterra) on one core. Julia's solver
  can fail for extreme θ (sbibm then returns NaN rows); this one returns numbers (none
  non-finite in 10^5 prior draws).
- bernoulli_glm: sbibm forms x from a spike train y as (sum y, the last 9 values of a padded
  cross-correlation with the stimulus); that is exactly Aᵀ y for the design matrix A (whose column
  1 + m is the stimulus delayed by m steps), which is what is computed here (checked in the tests).
  Because Aᵀ y is sufficient, the posterior is tractable: log p(θ | x) = log prior + θ·x
  - Σ softplus(Aθ) + const.
- Everything is float64 (sbibm simulates in float32).
"""
import argparse
import bz2
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy import special, stats

N_OBS, N_REF = 10, 10000
HERE = Path(__file__).resolve().parent


class DataMissing(FileNotFoundError):
    pass


# --- the sbibm data folder ----------------------------------------------------------------------

_data_override = None


def set_data_dir(path):
    global _data_override
    _data_override = None if path is None else Path(path)


def data_dir(required=True):
    """The sbibm data folder: set_data_dir()/--sbibm, else $SBIBM_DATA, else the first `shared/sbibm`
    found walking up from this script's folder."""
    if _data_override is not None:
        cands = [_data_override]
    elif os.environ.get("SBIBM_DATA"):
        cands = [Path(os.environ["SBIBM_DATA"])]
    else:
        cands = [p / "shared" / "sbibm" for p in [HERE, *HERE.parents]]
    for c in cands:
        if (c / "two_moons").is_dir():
            return c
    if not required:
        return None
    raise DataMissing(f"sbibm data folder not found (tried {', '.join(str(c) for c in cands[:3])}"
                      f"{', ...' if len(cands) > 3 else ''}); give --sbibm PATH or set SBIBM_DATA")


def _read_csv(path):
    opener = bz2.open if str(path).endswith(".bz2") else open
    with opener(path, "rt") as f:
        return np.atleast_2d(np.loadtxt(f, delimiter=",", skiprows=1))


def load_reference(task, root=None):
    """sbibm's data for TASK: observations [10, X], true parameters [10, P], reference posterior
    samples [10, 10000, P]."""
    t = get_task(task)
    if t.derived_from:   # observations made here at another task's true parameters
        _, theta, _ = load_reference(t.derived_from, root)
        return t.derived_reference(theta)
    name = t.data_name
    if name is None:
        raise DataMissing(f"{task}: sbibm's data folder has no observations for this task")
    root = Path(root) if root is not None else data_dir()
    folders = [root / name / f"num_observation_{k}" for k in range(1, N_OBS + 1)]
    if not folders[0].is_dir():
        raise DataMissing(f"{folders[0]} not found")
    obs = np.concatenate([_read_csv(f / "observation.csv") for f in folders])
    theta = np.concatenate([_read_csv(f / "true_parameters.csv") for f in folders])
    ref = np.stack([_read_csv(f / "reference_posterior_samples.csv.bz2") for f in folders])
    return obs, theta, ref


# --- tasks --------------------------------------------------------------------------------------

def _mvn_logpdf_iso(z, var):
    """log N(z; 0, var I) summed over the last axis."""
    d = z.shape[-1]
    return -0.5 * (z ** 2).sum(-1) / var - 0.5 * d * np.log(2 * np.pi * var)


def _log_box_mass(x, sd, lo, hi):
    """log P(N(x, sd^2) in [lo, hi]) per coordinate (from the side with the smaller tails)."""
    a, b = (lo - x) / sd, (hi - x) / sd
    flip = a > 0
    a, b = np.where(flip, -b, a), np.where(flip, -a, b)
    return np.log(special.ndtr(b) - special.ndtr(a))


def _truncnorm(x, sd, lo, hi, n, rng):
    """n draws of N(x, sd^2 I) truncated to [lo, hi]^d (independent coordinates)."""
    x = np.asarray(x, float)
    a, b = (lo - x) / sd, (hi - x) / sd
    return stats.truncnorm.rvs(a, b, loc=x, scale=sd, size=(n, len(x)), random_state=rng)


class Task:
    name = ""
    dim_theta = dim_x = 0
    bounds = None            # (low, high) arrays of the prior's box, or None
    data_name = None         # folder in the sbibm data (None: no reference data)
    derived_from = None      # or: the task whose true parameters this one's observations are made at
    analytic = False         # has an exact posterior sampler and density
    discrete = False         # x takes integer values
    exact_likelihood = True  # log_likelihood is normalised in x (else: only up to a function of x)

    def prior(self, n, rng):
        raise NotImplementedError

    def log_prior(self, theta):
        raise NotImplementedError

    def simulate(self, theta, rng):
        raise NotImplementedError

    def log_likelihood(self, theta, x):
        """log p(x | θ) for each row of theta ([n, P]) against one x ([X]) or one x per row."""
        raise NotImplementedError

    def log_posterior_unnorm(self, theta, x):
        lp = self.log_prior(theta)
        out = np.full(len(theta), -np.inf)
        ok = np.isfinite(lp)
        if ok.any():
            xx = x if np.ndim(x) == 1 else x[ok]
            out[ok] = lp[ok] + self.log_likelihood(theta[ok], xx)
        return out

    def posterior(self, x, n, rng):
        raise NotImplementedError(f"{self.name}: no exact posterior")

    def log_posterior(self, theta, x):
        raise NotImplementedError(f"{self.name}: no exact posterior")

    @staticmethod
    def _chunks(theta, fn, size=50000):   # bounds the memory of the ODE tasks
        return np.concatenate([fn(theta[i:i + size]) for i in range(0, max(len(theta), 1), size)])

    def support_args(self):
        """The prior's support as `sbgm train` bounds (--lower/--upper), or [] when it is unbounded."""
        if self.bounds is None:
            return []
        lo, hi = self.bounds
        return ["--lower=" + ",".join(f"{v:g}" for v in lo), "--upper=" + ",".join(f"{v:g}" for v in hi)]

    def _in_box(self, theta):
        lo, hi = self.bounds
        return ((theta >= lo) & (theta <= hi)).all(-1)

    def _uniform_prior(self, n, rng):
        lo, hi = self.bounds
        return rng.uniform(lo, hi, size=(n, self.dim_theta))

    def _uniform_log_prior(self, theta):
        lo, hi = self.bounds
        return np.where(self._in_box(theta), -np.log(hi - lo).sum(), -np.inf)


class GaussianLinear(Task):
    name = data_name = "gaussian_linear"
    dim_theta = dim_x = 10
    analytic = True
    var = 0.1   # prior and noise variance (sbibm's prior_scale, simulator_scale are variances)

    def prior(self, n, rng):
        return np.sqrt(self.var) * rng.standard_normal((n, self.dim_theta))

    def log_prior(self, theta):
        return _mvn_logpdf_iso(theta, self.var)

    def simulate(self, theta, rng):
        return theta + np.sqrt(self.var) * rng.standard_normal(theta.shape)

    def log_likelihood(self, theta, x):
        return _mvn_logpdf_iso(x - theta, self.var)

    def posterior(self, x, n, rng):
        return x / 2 + np.sqrt(self.var / 2) * rng.standard_normal((n, self.dim_theta))

    def log_posterior(self, theta, x):
        return _mvn_logpdf_iso(theta - x / 2, self.var / 2)


class GaussianLinearUniform(Task):
    name = data_name = "gaussian_linear_uniform"
    dim_theta = dim_x = 10
    analytic = True
    bounds = (-np.ones(10), np.ones(10))
    var = 0.1
    prior = Task._uniform_prior
    log_prior = Task._uniform_log_prior

    def simulate(self, theta, rng):
        return theta + np.sqrt(self.var) * rng.standard_normal(theta.shape)

    def log_likelihood(self, theta, x):
        return _mvn_logpdf_iso(x - theta, self.var)

    def posterior(self, x, n, rng):   # N(x, 0.1 I) truncated to the box
        return _truncnorm(x, np.sqrt(self.var), -1.0, 1.0, n, rng)

    def log_posterior(self, theta, x):
        sd = np.sqrt(self.var)
        lz = _log_box_mass(x, sd, -1.0, 1.0).sum()
        return np.where(self._in_box(theta), _mvn_logpdf_iso(theta - x, self.var) - lz, -np.inf)


class TwoMoons(Task):
    name = data_name = "two_moons"
    dim_theta = dim_x = 2
    analytic = True
    bounds = (-np.ones(2), np.ones(2))
    prior = Task._uniform_prior
    log_prior = Task._uniform_log_prior
    r_loc, r_scale, offset = 0.1, 0.01, 0.25

    @staticmethod
    def _shift(theta):   # (-|θ1 + θ2| / √2, (-θ1 + θ2) / √2): a rotation by -45 degrees, first part folded
        t1, t2 = theta[..., 0], theta[..., 1]
        return np.stack([-np.abs(t1 + t2) / np.sqrt(2), (t2 - t1) / np.sqrt(2)], -1)

    def _p(self, n, rng):
        a = rng.uniform(-np.pi / 2, np.pi / 2, n)
        r = self.r_loc + self.r_scale * rng.standard_normal(n)
        return np.stack([r * np.cos(a) + self.offset, r * np.sin(a)], 1)

    def simulate(self, theta, rng):
        return self._p(len(theta), rng) + self._shift(theta)

    def log_likelihood(self, theta, x):
        # p = (r cos a + 0.25, r sin a) with a ~ U(-π/2, π/2), r ~ N(0.1, 0.01²) has density
        # N(r; 0.1, 0.01²) / (π r) on the half plane u = p1 - 0.25 > 0 (sbibm's own _likelihood
        # leaves out the 1 / (π r), which matters for densities, not for its reference samples).
        p = x - self._shift(theta)
        u, v = p[..., 0] - self.offset, p[..., 1]
        r = np.hypot(u, v)
        with np.errstate(divide="ignore"):
            ll = stats.norm.logpdf(r, self.r_loc, self.r_scale) - np.log(np.pi * r)
        return np.where(u > 0, ll, -np.inf)

    def posterior(self, x, n, rng):
        """Exact draws by inverting the simulator: for (a, r) from their priors, q = x - p(a, r)
        gives |θ1 + θ2| = -√2 q1 and θ2 - θ1 = √2 q2, two mirror solutions of equal weight (the map
        has a constant Jacobian); draws outside the prior box are dropped."""
        out, have = [], 0
        while have < n:
            m = 4 * n
            s, d, ok = self._invert(x, self._p(m, rng))
            sign = np.where(rng.uniform(size=m) < 0.5, 1.0, -1.0)
            theta = np.stack([(sign * s - d) / 2, (sign * s + d) / 2], 1)
            theta = theta[ok & self._in_box(theta)]
            out.append(theta)
            have += len(theta)
        return np.concatenate(out)[:n]

    @staticmethod
    def _invert(x, p):
        s = -np.sqrt(2) * (x[0] - p[:, 0])   # |θ1 + θ2|
        d = np.sqrt(2) * (x[1] - p[:, 1])    # θ2 - θ1
        return s, d, s >= 0

    def _log_evidence(self, x, m=1000):
        """log ∫_box p(x | θ) dθ: the expected number of the two mirror preimages of x - p that
        fall in the box, over p ~ p(a, r) (a, r on a midpoint/quantile grid of m x m/5 points)."""
        a = -np.pi / 2 + np.pi * (np.arange(m) + 0.5) / m
        r = self.r_loc + self.r_scale * special.ndtri((np.arange(m // 5) + 0.5) / (m // 5))
        a, r = [g.ravel() for g in np.meshgrid(a, r)]
        p = np.stack([r * np.cos(a) + self.offset, r * np.sin(a)], 1)
        s, d, ok = self._invert(x, p)
        count = sum(self._in_box(np.stack([(sg * s - d) / 2, (sg * s + d) / 2], 1)) & ok for sg in (1.0, -1.0))
        return np.log(count.mean())

    def log_posterior(self, theta, x):
        return np.where(self._in_box(theta), self.log_likelihood(theta, x) - self._log_evidence(x), -np.inf)


class GaussianMixture(Task):
    name = data_name = "gaussian_mixture"
    dim_theta = dim_x = 2
    analytic = True
    bounds = (-10 * np.ones(2), 10 * np.ones(2))
    prior = Task._uniform_prior
    log_prior = Task._uniform_log_prior
    sds = np.array([1.0, 0.1])   # ½ N(θ, I) + ½ N(θ, 0.01 I); one component for both coordinates

    def simulate(self, theta, rng):
        sd = self.sds[rng.integers(0, 2, len(theta))][:, None]
        return theta + sd * rng.standard_normal(theta.shape)

    def log_likelihood(self, theta, x):
        z = x - theta
        return np.logaddexp(*[np.log(0.5) + _mvn_logpdf_iso(z, s ** 2) for s in self.sds])

    def _log_masses(self, x):
        return np.array([np.log(0.5) + _log_box_mass(x, s, -10.0, 10.0).sum() for s in self.sds])

    def posterior(self, x, n, rng):
        """The same mixture centred on x, truncated to the box: component k with probability
        proportional to its mass inside the box, then a truncated normal."""
        lw = self._log_masses(x)
        k = rng.uniform(size=n) < np.exp(lw[1] - np.logaddexp(*lw))
        out = np.empty((n, 2))
        for j, sel in enumerate([~k, k]):
            out[sel] = _truncnorm(x, self.sds[j], -10.0, 10.0, int(sel.sum()), rng)
        return out

    def log_posterior(self, theta, x):
        return np.where(self._in_box(theta), self.log_likelihood(theta, x) - np.logaddexp(*self._log_masses(x)),
                        -np.inf)


class SLCP(Task):
    name = data_name = "slcp"
    dim_theta, dim_x = 5, 8
    bounds = (-3 * np.ones(5), 3 * np.ones(5))
    prior = Task._uniform_prior
    log_prior = Task._uniform_log_prior
    eps = 1e-6

    def _gauss(self, theta):
        """Mean [n, 2] and Cholesky factor [[l00, 0], [l10, l11]] of the 2-D Gaussian."""
        m = theta[:, :2]
        s1, s2, rho = theta[:, 2] ** 2, theta[:, 3] ** 2, np.tanh(theta[:, 4])
        c00, c01, c11 = s1 ** 2 + self.eps, rho * s1 * s2, s2 ** 2 + self.eps
        l00 = np.sqrt(c00)
        l10 = c01 / l00
        l11 = np.sqrt(np.maximum(c11 - l10 ** 2, 0.0))
        return m, l00, l10, l11

    def simulate(self, theta, rng):
        # four iid draws of N(m, Σ), written point by point: (x1, y1, x2, y2, ...)
        m, l00, l10, l11 = self._gauss(theta)
        z = rng.standard_normal((len(theta), 4, 2))
        x0 = m[:, None, 0] + l00[:, None] * z[..., 0]
        x1 = m[:, None, 1] + l10[:, None] * z[..., 0] + l11[:, None] * z[..., 1]
        return np.stack([x0, x1], -1).reshape(len(theta), 8)

    def log_likelihood(self, theta, x):
        m, l00, l10, l11 = self._gauss(theta)
        pts = np.broadcast_to(x, (len(theta), 8)).reshape(len(theta), 4, 2)
        z0 = (pts[..., 0] - m[:, None, 0]) / l00[:, None]
        z1 = (pts[..., 1] - m[:, None, 1] - l10[:, None] * z0) / l11[:, None]
        return (-0.5 * (z0 ** 2 + z1 ** 2) - np.log(2 * np.pi * l00 * l11)[:, None]).sum(1)


def _stimulus():
    """sbibm's GLM stimulus: 100 draws of N(0, 1) from NumPy's RandomState(42), stored as float32."""
    return np.random.RandomState(42).randn(100).astype(np.float32).astype(np.float64)


def _design_matrix(stim):
    """[100, 10]: a column of ones, then the stimulus delayed by 0 ... 8 steps (zeros before it)."""
    A = np.zeros((100, 10))
    A[:, 0] = 1
    for j in range(9):
        A[j:, 1 + j] = stim[:100 - j]
    return A


class BernoulliGLM(Task):
    name = data_name = "bernoulli_glm"
    dim_theta, dim_x = 10, 10
    discrete = True
    exact_likelihood = False
    _A = None

    def __init__(self):
        # prior N(0, B) given by its precision: 0.5 for the offset, FᵀF for the filter, where
        # F = D D + diag(√(i/9)) and D = I - (ones below the diagonal) penalise second differences
        D = np.eye(9) - np.eye(9, k=-1)
        F = D @ D + np.diag(np.sqrt(np.arange(9) / 9))
        P = np.zeros((10, 10))
        P[0, 0] = 0.5
        P[1:, 1:] = F.T @ F
        self.precision = P
        self.chol = np.linalg.cholesky(P)
        self.logdet = 2 * np.log(np.diag(self.chol)).sum()

    @property
    def A(self):
        """The design matrix: sbibm's design_matrix.csv when the data folder is there (the same
        numbers as the regenerated one, checked in the tests), else regenerated."""
        if BernoulliGLM._A is None:
            root = data_dir(required=False)
            f = root / "bernoulli_glm" / "design_matrix.csv" if root else None
            if f is not None and f.is_file():
                BernoulliGLM._A = np.loadtxt(f, delimiter=",")
            else:
                BernoulliGLM._A = _design_matrix(_stimulus())
        return BernoulliGLM._A

    def prior(self, n, rng):
        # θ = L⁻ᵀ z with P = L Lᵀ has covariance P⁻¹
        from scipy.linalg import solve_triangular
        return solve_triangular(self.chol.T, rng.standard_normal((10, n)), lower=False).T

    def log_prior(self, theta):
        q = np.einsum("ni,ij,nj->n", theta, self.precision, theta)
        return -0.5 * q + 0.5 * self.logdet - 5 * np.log(2 * np.pi)

    def spikes(self, theta, rng):
        p = special.expit(theta @ self.A.T)
        return (rng.uniform(size=p.shape) < p).astype(np.float64)

    def simulate(self, theta, rng):
        return self.spikes(theta, rng) @ self.A   # (number of spikes, spike-triggered sums at lags 0 ... 8)

    def log_likelihood(self, theta, x):
        """log p(x | θ) up to a function of x alone: θ·x - Σ_i log(1 + exp((Aθ)_i))."""
        return (theta * x).sum(-1) - np.logaddexp(0, theta @ self.A.T).sum(-1)

    def laplace(self, s):
        """The posterior's mode given the sufficient statistic s = Aᵀy (Newton's method on a strictly
        concave log density) and the inverse of the negative Hessian there: [10], [10, 10]."""
        theta = np.zeros(self.dim_theta)
        for _ in range(100):
            p = special.expit(self.A @ theta)
            hessian = self.A.T @ (self.A * (p * (1 - p))[:, None]) + self.precision
            step = np.linalg.solve(hessian, s - self.A.T @ p - self.precision @ theta)
            theta = theta + step
            if np.abs(step).max() < 1e-12:
                break
        p = special.expit(self.A @ theta)
        return theta, np.linalg.inv(self.A.T @ (self.A * (p * (1 - p))[:, None]) + self.precision)

    def reference_posterior(self, s, n, rng):
        """n independent draws of p(θ | Aᵀy = s) by rejection from a multivariate t (5 degrees of
        freedom) on the Laplace approximation: the posterior is log-concave, so the t's heavier
        tails keep the density ratio bounded; the bound used is the largest ratio among all
        proposals drawn (at least 20 per draw kept). Checked against sbibm's MCMC reference
        samples in test_sbibm.py."""
        mode, cov = self.laplace(s)
        q = stats.multivariate_t(mode, cov, df=5)
        pool = max(20 * n, 50000)
        while True:
            th = q.rvs(pool, random_state=rng).reshape(pool, -1)
            lw = self.log_prior(th) + BernoulliGLM.log_likelihood(self, th, s) - q.logpdf(th)   # given Aᵀy
            keep = th[np.log(rng.uniform(size=pool)) < lw - lw.max()]
            if len(keep) >= n:
                return keep[:n]
            pool *= 2


class BernoulliGLMRaw(BernoulliGLM):
    """The same model with the 100-step spike train itself as x (sbibm's bernoulli_glm_raw): a raw
    series, for summary networks. sbibm's raw observations (observation_raw.csv) are not in the
    data folder, so its observations are made here: spike trains simulated at bernoulli_glm's 10
    true parameters (seed 1000 + k for observation k), with reference samples drawn from the
    exact posterior given their sufficient statistic Aᵀy (reference_posterior)."""
    name, data_name = "bernoulli_glm_raw", None
    derived_from = "bernoulli_glm"
    dim_x = 100

    def derived_reference(self, theta_true):
        obs = np.stack([self.spikes(th[None], np.random.default_rng(1000 + k))[0] for k, th in enumerate(theta_true)])
        ref = np.stack([self.reference_posterior(y @ self.A, N_REF, np.random.default_rng(2000 + k))
                        for k, y in enumerate(obs)])
        return obs, theta_true, ref

    def simulate(self, theta, rng):
        return self.spikes(theta, rng)

    def log_likelihood(self, theta, x):
        psi = theta @ self.A.T
        return (x * psi).sum(-1) - np.logaddexp(0, psi).sum(-1)


class LogNormalPrior(Task):
    """θ with independent log-normal priors: log θ ~ N(loc, scale²) (sir, lotka_volterra)."""

    def prior(self, n, rng):
        return np.exp(self.loc + self.scale * rng.standard_normal((n, self.dim_theta)))

    def support_args(self):
        return ["--lower=0"]

    def log_prior(self, theta):
        with np.errstate(divide="ignore", invalid="ignore"):
            lt = np.log(theta)
            lp = stats.norm.logpdf(lt, self.loc, self.scale).sum(-1) - lt.sum(-1)
        return np.where((theta > 0).all(-1), lp, -np.inf)


class SIR(LogNormalPrior):
    name = data_name = "sir"
    dim_theta, dim_x = 2, 10
    discrete = True
    loc, scale = np.log([0.4, 0.125]), np.array([0.5, 0.2])
    N, total = 1e6, 1000
    days = 17.0 * np.arange(10)   # days 0, 17, ..., 153 (every 17th of the 161 daily values)
    h = 0.1                       # RK4 step, days

    def infected(self, theta):
        """I / N at the ten days, [n, 10]: S' = -β S I / N, I' = β S I / N - γ I from (N - 1, 1),
        integrated as s = S / N and log i (i = I / N) by RK4, all θ at once."""
        b, g = theta[:, 0], theta[:, 1]
        s = np.full(len(theta), 1 - 1 / self.N)
        li = np.full(len(theta), np.log(1 / self.N))
        nsub = int(round(17.0 / self.h))
        h = 17.0 / nsub

        def f(s, li):
            return -b * s * np.exp(li), b * s - g
        out = [np.exp(li)]
        for _ in range(9):
            for _ in range(nsub):
                k1 = f(s, li)
                k2 = f(s + h / 2 * k1[0], li + h / 2 * k1[1])
                k3 = f(s + h / 2 * k2[0], li + h / 2 * k2[1])
                k4 = f(s + h * k3[0], li + h * k3[1])
                s = s + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
                li = li + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
            out.append(np.exp(li))
        return np.clip(np.stack(out, 1), 0.0, 1.0)

    def simulate(self, theta, rng):
        p = self._chunks(theta, self.infected)
        return rng.binomial(self.total, p).astype(np.float64)

    def log_likelihood(self, theta, x):
        p = self._chunks(theta, self.infected)
        return stats.binom.logpmf(x, self.total, p).sum(-1)


class LotkaVolterra(LogNormalPrior):
    name = data_name = "lotka_volterra"
    dim_theta, dim_x = 4, 20
    loc, scale = np.array([-0.125, -3.0, -0.125, -3.0]), 0.5
    u0 = (30.0, 1.0)
    times = 2.1 * np.arange(10)   # every 21st of the 201 values on 0, 0.1, ..., 20
    h = 0.005                     # RK4 step
    noise = 0.1

    def log_populations(self, theta):
        """log of (u at the ten times, then v at the ten times), [n, 20], clamped to [1e-10, 1e4]
        as sbibm does: u' = α u - β u v, v' = -γ v + δ u v from (30, 1), integrated as (log u, log v)
        by RK4, all θ at once."""
        a, b, g, d = theta.T
        y1 = np.full(len(theta), np.log(self.u0[0]))
        y2 = np.full(len(theta), np.log(self.u0[1]))
        nsub = int(round(2.1 / self.h))
        h = 2.1 / nsub

        def f(y1, y2):
            return a - b * np.exp(y2), -g + d * np.exp(y1)
        us, vs = [y1], [y2]
        with np.errstate(over="ignore"):
            for _ in range(9):
                for _ in range(nsub):
                    k1 = f(y1, y2)
                    k2 = f(y1 + h / 2 * k1[0], y2 + h / 2 * k1[1])
                    k3 = f(y1 + h / 2 * k2[0], y2 + h / 2 * k2[1])
                    k4 = f(y1 + h * k3[0], y2 + h * k3[1])
                    y1 = y1 + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
                    y2 = y2 + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
                us.append(y1)
                vs.append(y2)
        out = np.concatenate([np.stack(us, 1), np.stack(vs, 1)], 1)
        return np.clip(np.nan_to_num(out, nan=np.log(1e-10)), np.log(1e-10), np.log(1e4))

    def simulate(self, theta, rng):
        m = self._chunks(theta, self.log_populations)
        return np.exp(m + self.noise * rng.standard_normal(m.shape))

    def log_likelihood(self, theta, x):
        m = self._chunks(theta, self.log_populations)
        lx = np.log(x)
        return (stats.norm.logpdf(lx, m, self.noise) - lx).sum(-1)


TASKS = {t.name: t for t in [GaussianLinear(), GaussianLinearUniform(), TwoMoons(), GaussianMixture(), SLCP(),
                             BernoulliGLM(), BernoulliGLMRaw(), SIR(), LotkaVolterra()]}
BENCHMARK = ["gaussian_linear", "gaussian_linear_uniform", "two_moons", "gaussian_mixture", "slcp",
             "bernoulli_glm", "sir", "lotka_volterra"]


def get_task(name):
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; tasks: {', '.join(TASKS)}")
    return TASKS[name]


def simulate(task, n, seed=0):
    """(θ [n, P], x [n, X]) from the prior predictive."""
    t = get_task(task)
    rng = np.random.default_rng(seed)
    theta = t.prior(n, rng)
    return theta, t.simulate(theta, rng)


# --- C2ST ---------------------------------------------------------------------------------------

def c2st(reference, samples, seed=1, n_folds=5, fast=False, n_jobs=None, classifier="mlp"):
    """Classifier two-sample test as sbibm's metrics.c2st computes it: both sets z-scored with the
    reference's mean and (unbiased) std, float32, an MLP with two hidden layers of 10·dim ReLU
    units (adam, max_iter 10000, random_state = seed), accuracy averaged over a shuffled KFold
    (random_state = seed). 0.5: indistinguishable, 1: separable. fast=True adds early stopping
    on a 10% validation split of each training fold (not sbibm's setting). classifier="rf": a
    random forest with scikit-learn's defaults instead of the MLP (what sbi's and GenSBI's c2st
    use by default; a weaker classifier, so its numbers are closer to 0.5 than sbibm's)."""
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.neural_network import MLPClassifier
    X = np.asarray(reference, np.float64)
    Y = np.asarray(samples, np.float64)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[1] != Y.shape[1]:
        raise ValueError(f"c2st: need two [n, d] arrays of equal d, got {X.shape} and {Y.shape}")
    if not (np.isfinite(X).all() and np.isfinite(Y).all()):
        raise ValueError("c2st: samples contain NaN or Inf")
    mean, std = X.mean(0), X.std(0, ddof=1)
    X = ((X - mean) / std).astype(np.float32)
    Y = ((Y - mean) / std).astype(np.float32)
    d = X.shape[1]
    if classifier == "rf":
        from sklearn.ensemble import RandomForestClassifier
        clf = RandomForestClassifier(random_state=seed)
    elif classifier == "mlp":
        clf = MLPClassifier(activation="relu", hidden_layer_sizes=(10 * d, 10 * d), max_iter=10000, solver="adam",
                            random_state=seed, early_stopping=fast)
    else:
        raise ValueError(f"c2st: classifier must be mlp or rf, got {classifier!r}")
    data = np.concatenate([X, Y])
    target = np.concatenate([np.zeros(len(X)), np.ones(len(Y))])
    cv = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return float(np.mean(cross_val_score(clf, data, target, cv=cv, scoring="accuracy", n_jobs=n_jobs)))


def c2st_mode(fast):
    return "fast" if fast else "exact"


# --- checks against the reference data ----------------------------------------------------------

def _pvalue(stat_obs, stat_sim, rng):
    """P(T_sim <= T_obs) with ties broken at random: uniform when x_o is a draw like the others."""
    below = (stat_sim < stat_obs).sum()
    ties = (stat_sim == stat_obs).sum()
    return (below + rng.uniform() * (ties + 1)) / (len(stat_sim) + 1)


def check_observations(task, n_sim=2000, seed=0, data=None):
    """Is each observation x_o a typical draw of the simulator at its true θ? For each of the 10,
    the p-value of x_o's log-likelihood among n_sim simulated x (Mahalanobis distance to their
    mean under their covariance where the likelihood is known only up to a function of x); a KS
    test of the 10 p-values against U(0, 1). Returns (p-values [10], KS p-value)."""
    t = get_task(task)
    obs, theta, _ = data if data is not None else load_reference(task)
    rng = np.random.default_rng(seed)
    pv = []
    for xo, th in zip(obs, theta):
        xs = t.simulate(np.repeat(th[None], n_sim, 0), rng)
        if t.exact_likelihood:
            stat_sim = t.log_likelihood(np.repeat(th[None], n_sim, 0), xs)
            stat_obs = t.log_likelihood(th[None], xo)[0]
        else:
            mu, cov = xs.mean(0), np.cov(xs.T)
            icov = np.linalg.pinv(cov)
            stat_sim = -np.einsum("ni,ij,nj->n", xs - mu, icov, xs - mu)
            stat_obs = -(xo - mu) @ icov @ (xo - mu)
        pv.append(_pvalue(stat_obs, stat_sim, rng))
    pv = np.array(pv)
    return pv, float(stats.kstest(pv, "uniform").pvalue)


def _log_transform(t):
    return isinstance(t, (SIR, LotkaVolterra))


def importance_weights(task, x, reference, rng, n_proposal=20000):
    """θ [n_proposal, P] from a proposal fitted to reference samples, and normalised importance
    weights [n_proposal] towards this code's prior(θ) p(x | θ). The proposal is defensive (as
    sbibm's own): 10% prior, 90% a fit to the samples, a Gaussian KDE (half Scott's bandwidth)
    for the multimodal or curved posteriors (two_moons, gaussian_mixture, slcp), a multivariate t
    (5 degrees of freedom) with the samples' mean and covariance for the others (in log θ for sir
    and lotka_volterra). Without the prior part the fit's missing tails bias the spread low."""
    t = get_task(task)
    logt = _log_transform(t)
    z = np.log(reference) if logt else np.asarray(reference)
    if task in ("two_moons", "gaussian_mixture", "slcp"):
        q = stats.gaussian_kde(z.T)
        q.set_bandwidth(q.factor / 2)
        zs = q.resample(n_proposal, seed=rng).T
        qlogpdf = lambda v: q.logpdf(v.T)
    else:
        q = stats.multivariate_t(z.mean(0), np.cov(z.T), df=5)
        zs = q.rvs(n_proposal, random_state=rng).reshape(n_proposal, -1)
        qlogpdf = q.logpdf
    th = np.exp(zs) if logt else zs
    from_prior = rng.uniform(size=n_proposal) < 0.1
    th[from_prior] = t.prior(int(from_prior.sum()), rng)
    with np.errstate(divide="ignore"):
        zs = np.log(th) if logt else th
    lq = qlogpdf(zs) - (zs.sum(1) if logt else 0)
    lq = np.logaddexp(np.log(0.9) + lq, np.log(0.1) + t.log_prior(th))
    lw = t.log_posterior_unnorm(th, x) - lq
    w = np.exp(lw - lw.max())
    return th, w / w.sum()


def ess(w):
    return float(1.0 / (w ** 2).sum())


def rejection_draws(th, w, rng):
    """Keep each weighted draw with probability w / max w: i.i.d. draws of the target (as long
    as the largest weight seen is the supremum), none repeated."""
    return th[rng.uniform(size=len(w)) * w.max() < w]


def moment_z(th, w, reference):
    """How far the weighted mean and std of θ are from the reference samples', in units of their
    Monte Carlo error: (z of the means [P], z of the log stds [P])."""
    n_eff, n_ref = ess(w), len(reference)
    m = w @ th
    sd = np.sqrt(w @ (th - m) ** 2)
    m_r, sd_r = reference.mean(0), reference.std(0)
    z_mean = (m - m_r) / (sd_r * np.sqrt(1 / n_eff + 1 / n_ref))
    z_sd = np.log(sd / sd_r) / np.sqrt(1 / (2 * n_eff) + 1 / (2 * n_ref))
    return z_mean, z_sd


def check_posterior(task, k, n=3000, fast=True, seed=0, data=None, c2st_exact=True, c2st_importance=True,
                    n_proposal=20000):
    """Posterior draws made here against sbibm's reference samples for observation k (0-based).
    Half of the reference samples fit the importance proposal, the other half is compared with:
    - importance: this code's prior x likelihood, reweighted from the proposal; the largest |z| of
      the weighted means and log stds (ESS-aware) and, if asked, the C2ST of rejection draws;
    - exact (analytic tasks): C2ST of the exact sampler's draws.
    Returns a dict."""
    t = get_task(task)
    obs, _, ref = data if data is not None else load_reference(task)
    rng = np.random.default_rng(seed + k)
    half = len(ref[k]) // 2
    fit, test = ref[k][:half], ref[k][half:]
    th, w = importance_weights(task, obs[k], fit, rng, n_proposal)
    zm, zs = moment_z(th, w, test)
    res = {"obs": k + 1, "ess": ess(w), "z_mean": float(np.abs(zm).max()), "z_std": float(np.abs(zs).max())}
    if c2st_importance:
        draws = rejection_draws(th, w, rng)[:n]
        res["n_importance"] = len(draws)
        res["c2st_importance"] = c2st(test[:len(draws)], draws, fast=fast)
    if t.analytic and c2st_exact:
        res["c2st_exact"] = c2st(test[:n], t.posterior(obs[k], n, rng), fast=fast)
    return res


# --- the benchmark cell ------------------------------------------------------------------------

def _sbgm_default():
    return os.environ.get("SBGM") or str(HERE / ".." / ".." / "build" / "apps" / "sbgm" / "sbgm")


def _training_steps(run_dir):
    """Steps taken: the last row of the run's loss.csv (config.toml's train.steps without one)."""
    loss = Path(run_dir) / "loss.csv"
    if loss.is_file():
        rows = [r for r in loss.read_text().splitlines()[1:] if r.strip()]
        if rows:
            return int(float(rows[-1].split(",")[0]))
    cfg = Path(run_dir) / "config.toml"
    if cfg.is_file():
        import tomllib
        return tomllib.loads(cfg.read_text()).get("train", {}).get("steps")
    return None


def _sh(cmd):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    t0 = time.time()
    r = subprocess.run([str(c) for c in cmd])
    if r.returncode != 0:
        raise SystemExit(f"sbibm.py: {Path(str(cmd[0])).name} {cmd[1]} failed with exit code {r.returncode}")
    return time.time() - t0


def outside_prior(task, post):
    """Per observation, the fraction of posterior draws [k, n, d] outside the prior's box (a draw
    there is told apart by the classifier for nothing: a fraction f alone puts C2ST at 0.5 + f/2),
    or None for a prior without a box. Non-finite draws count as outside."""
    t = get_task(task)
    if t.bounds is None:
        return None
    return (~t._in_box(post)).mean(-1).tolist()


def run_cell(task, budget, seed=0, out=None, sbgm=None, fast_c2st=False, n_obs=N_OBS, extra_train_args=(),
             bounded=False):
    t = get_task(task)
    if bounded:   # the prior's support given to sbgm: the posterior is modelled within it
        extra_train_args = list(t.support_args()) + list(extra_train_args)
    if t.data_name is None and t.derived_from is None:
        raise DataMissing(f"{task}: no reference data, so no benchmark cell")
    sbgm = sbgm or _sbgm_default()
    if not Path(sbgm).is_file():
        raise SystemExit(f"sbibm.py: sbgm not found at {sbgm} (build it, or give --sbgm or SBGM)")
    out = Path(out) if out else HERE.parent.parent / "runs" / "sbi" / f"{task}_{budget}_seed{seed}"
    out.mkdir(parents=True, exist_ok=True)
    obs, theta_true, ref = load_reference(task)
    k = n_obs
    obs, theta_true, ref = obs[:k], theta_true[:k], ref[:k]
    np.save(out / "observations.npy", obs)
    np.save(out / "true_theta.npy", theta_true)
    np.save(out / "reference.npy", ref)

    t0 = time.time()
    theta, x = simulate(task, budget, seed)
    np.save(out / "theta.npy", theta)
    np.save(out / "x.npy", x)
    sim_s = time.time() - t0

    run = out / "run"
    if run.exists():
        shutil.rmtree(run)   # a fresh run each time: files of an earlier one would mislead
    train = [sbgm, "train", "--data", out / "theta.npy", "--cond", out / "x.npy", "--out", run]
    if seed != 0:
        train += ["--seed", seed]
    train_s = _sh(train + list(extra_train_args))
    sample_s = _sh([sbgm, "sample", "--checkpoint", run, "--cond", out / "observations.npy", "--n", N_REF,
                    "--out", out / "posterior.npy"])
    loglik_s = _sh([sbgm, "loglik", "--checkpoint", run, "--cond", out / "observations.npy",
                    "--data", out / "true_theta.npy", "--out", out / "logp_true.npy"])
    logp = np.load(out / "logp_true.npy").reshape(-1)
    post = np.load(out / "posterior.npy")

    t0 = time.time()
    finite = np.isfinite(post).all(-1)                   # [k, n]: a diverged draw is scored by leaving it out
    acc = [c2st(ref[i], post[i][finite[i]], fast=fast_c2st) if finite[i].any() else None for i in range(k)]
    c2st_s = time.time() - t0
    scored = [a for a in acc if a is not None]
    result = {
        "task": task, "budget": budget, "seed": seed, "observations": k,
        "c2st": acc, "c2st_mean": float(np.mean(scored)) if len(scored) == k else None,
        "c2st_mode": c2st_mode(fast_c2st), "nonfinite_samples": (~finite).sum(1).tolist(),
        "outside_prior": outside_prior(task, post),
        "logp_true": logp.tolist(), "logp_true_mean": float(logp.mean()),
        "train_steps": _training_steps(run),
        "simulate_seconds": round(sim_s, 2), "train_seconds": round(train_s, 2),
        "sample_seconds": round(sample_s, 2), "loglik_seconds": round(loglik_s, 2),
        "c2st_seconds": round(c2st_s, 2), "extra_train_args": [str(a) for a in extra_train_args],
    }
    if t.analytic:   # the exact log p(θ_true | x_o), beside the model's
        exact = [float(t.log_posterior(theta_true[i][None], obs[i])[0]) for i in range(k)]
        result["logp_true_exact"] = exact
        result["logp_true_exact_mean"] = float(np.mean(exact))
    (out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    extra = f", exact {result['logp_true_exact_mean']:.2f}" if t.analytic else ""
    score = (f"{result['c2st_mean']:.3f}" if result["c2st_mean"] is not None else "n/a") + \
        (f" ({result['c2st_mode']}, {k} obs, {min(scored):.3f}-{max(scored):.3f})" if scored else "")
    bad = sum(result["nonfinite_samples"])
    leak = result["outside_prior"]
    print(f"{task} budget {budget} seed {seed}: C2ST {score}"
          + (f" [{bad} non-finite draws left out]" if bad else "")
          + (f", {100 * np.mean(leak):.1f}% of draws outside the prior's box" if leak is not None else "")
          + f", mean log p(theta_true | x_o) {result['logp_true_mean']:.2f}{extra}, "
          f"{result['train_steps']} steps, train {train_s:.0f} s, sample {sample_s:.0f} s -> {out / 'result.json'}")
    return result


# --- command line ------------------------------------------------------------------------------

def _cmd_check(a):
    names = BENCHMARK if a.task == "all" else [a.task]
    mode = c2st_mode(not a.exact)
    for name in names:
        t = get_task(name)
        data = load_reference(name)
        t0 = time.time()
        pv, ks = check_observations(name, n_sim=a.n_sim, data=data)
        print(f"{name}: x_o among {a.n_sim} simulations at theta_true, p-values " + " ".join(f"{p:.3f}" for p in pv)
              + f"; KS p = {ks:.3g}")
        for k in range(a.obs):
            r = check_posterior(name, k, n=a.n, fast=not a.exact, data=data)
            line = (f"{name} obs {k + 1}: prior x likelihood reweighted (ESS {r['ess']:.0f}): max |z| mean "
                    f"{r['z_mean']:.1f}, std {r['z_std']:.1f}; C2ST ({mode}) of {r['n_importance']} rejection draws "
                    f"{r['c2st_importance']:.3f}")
            if t.analytic:
                line += f"; exact sampler C2ST {r['c2st_exact']:.3f}"
            print(line, flush=True)
        print(f"{name}: [{time.time() - t0:.0f} s]")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--sbibm", default=argparse.SUPPRESS,
                        help="the sbibm data folder (default: $SBIBM_DATA, or shared/sbibm above this script)")
    p = argparse.ArgumentParser(prog="sbibm.py", description=__doc__.split("\n\n")[0], parents=[common])
    sub = p.add_subparsers(dest="cmd", required=True)
    _add = sub.add_parser
    sub.add_parser = lambda *args, **kw: _add(*args, parents=[common], **kw)
    s = sub.add_parser("simulate", help="theta.npy, x.npy from the prior predictive")
    s.add_argument("task"), s.add_argument("n", type=int), s.add_argument("out")
    s.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("observations", help="sbibm's observations, true parameters and reference samples as .npy")
    s.add_argument("task"), s.add_argument("out")
    s = sub.add_parser("c2st", help="C2ST of SAMPLES [K, n, P] against REFERENCE [>=K, m, P]")
    s.add_argument("samples"), s.add_argument("reference")
    s.add_argument("--fast", action="store_true", help="early stopping (not sbibm's setting; ~10x faster)")
    s.add_argument("--jobs", type=int, default=None, help="folds in parallel (same result)")
    s.add_argument("--classifier", choices=["mlp", "rf"], default="mlp",
                   help="rf: a random forest (sbi's and GenSBI's default) instead of sbibm's MLP")
    s = sub.add_parser("run", help="one benchmark cell with sbgm's defaults; sbgm train arguments may follow --")
    s.add_argument("task"), s.add_argument("budget", type=int)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out")
    s.add_argument("--sbgm")
    s.add_argument("--fast-c2st", action="store_true")
    s.add_argument("--obs", type=int, default=N_OBS, help="use the first K observations only")
    s.add_argument("--bounded", action="store_true",
                   help="give sbgm the prior's support (--lower/--upper: the box of a uniform prior, 0 for log-normal)")
    s = sub.add_parser("check", help="this code against sbibm's reference data (TASK or all)")
    s.add_argument("task")
    s.add_argument("--n-sim", type=int, default=5000, help="simulations at each true theta")
    s.add_argument("--n", type=int, default=3000, help="posterior draws per C2ST")
    s.add_argument("--obs", type=int, default=3, help="observations for the posterior checks")
    s.add_argument("--exact", action="store_true", help="sbibm's C2ST instead of the fast one")
    a = p.parse_args(argv)
    if extra and a.cmd != "run":
        p.error("arguments after -- are for `run` only")
    set_data_dir(getattr(a, "sbibm", None))
    try:
        if a.cmd not in ("c2st",) and a.task not in TASKS and not (a.cmd == "check" and a.task == "all"):
            raise KeyError(f"unknown task {a.task!r}; tasks: {', '.join(TASKS)}")
        if a.cmd == "simulate":
            theta, x = simulate(a.task, a.n, a.seed)
            os.makedirs(a.out, exist_ok=True)
            np.save(Path(a.out) / "theta.npy", theta)
            np.save(Path(a.out) / "x.npy", x)
        elif a.cmd == "observations":
            obs, theta, ref = load_reference(a.task)
            os.makedirs(a.out, exist_ok=True)
            np.save(Path(a.out) / "observations.npy", obs)
            np.save(Path(a.out) / "true_theta.npy", theta)
            np.save(Path(a.out) / "reference.npy", ref)
        elif a.cmd == "c2st":
            s, r = np.load(a.samples), np.load(a.reference)
            if s.ndim == 2:
                s = s[None]
            if r.ndim == 2:
                r = r[None]
            if len(s) > len(r):
                raise ValueError(f"{len(s)} sample sets but {len(r)} reference sets")
            t0 = time.time()
            acc = [c2st(r[i], s[i], fast=a.fast, n_jobs=a.jobs, classifier=a.classifier) for i in range(len(s))]
            mode = "random forest" if a.classifier == "rf" else c2st_mode(a.fast)
            print(f"c2st ({mode}, {s.shape[1]} vs {r.shape[1]} samples, {time.time() - t0:.0f} s) "
                  "per observation: " + " ".join(f"{v:.3f}" for v in acc))
            print(f"c2st mean: {np.mean(acc):.3f}")
        elif a.cmd == "run":
            if not 1 <= a.obs <= N_OBS:
                raise ValueError(f"--obs must be 1 ... {N_OBS}")
            run_cell(a.task, a.budget, a.seed, a.out, a.sbgm, a.fast_c2st, a.obs, extra, a.bounded)
        elif a.cmd == "check":
            _cmd_check(a)
    except DataMissing as e:
        print(f"sbibm.py: error: {e}", file=sys.stderr)
        return 2
    except (KeyError, ValueError) as e:
        print(f"sbibm.py: error: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    except OSError as e:   # a file named on the command line that cannot be read or written
        print(f"sbibm.py: error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
