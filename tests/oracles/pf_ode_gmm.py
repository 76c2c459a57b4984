"""Independent oracle for `sbgm loglik --gmm`: the probability-flow ODE of a Gaussian mixture
diffused by an SDE, solved with scipy (DOP853, tight tolerances) and an analytic divergence.

    python3 pf_ode_gmm.py OUT_DIR

writes OUT_DIR/gmm.npz (np.savez_compressed), OUT_DIR/points.npy and, for each SDE,
OUT_DIR/expected_<sde>.npy (log p(x) in nats: prior log-density at x(T) plus the integrated
divergence) and OUT_DIR/mixture_logp.npy (the mixture's own log-density). Nothing here shares
code with sbgm: the SDE coefficients are written from their textbook definitions. The linear
path of flow matching (x_t = (1 - t) x0 + t z), whose f and g^2 are infinite at t = 1, is solved
with its velocity E[z - x0 | x_t] written from the components' Gaussian conditionals.
"""
import sys
import numpy as np
from scipy.integrate import solve_ivp

T, T_EPS = 1.0, 1e-5
BETA_MIN, BETA_MAX = 0.1, 20.0
SIGMA_MIN, SIGMA_MAX = 0.01, 50.0
COS_S, COS_MAX_BETA = 0.008, 1000.0


def vp(t):  # returns f, g^2, m, sigma
    beta = BETA_MIN + t * (BETA_MAX - BETA_MIN)
    B = BETA_MIN * t + 0.5 * (BETA_MAX - BETA_MIN) * t * t
    return -0.5 * beta, beta, np.exp(-0.5 * B), np.sqrt(1 - np.exp(-B))


def subvp(t):
    f, beta, m, _ = vp(t)
    B = BETA_MIN * t + 0.5 * (BETA_MAX - BETA_MIN) * t * t
    return f, beta * (1 - np.exp(-2 * B)), m, 1 - np.exp(-B)


def ve(t):
    r = SIGMA_MAX / SIGMA_MIN
    sve2 = SIGMA_MIN ** 2 * r ** (2 * t)
    return 0.0, 2 * np.log(r) * sve2, 1.0, np.sqrt(sve2 - SIGMA_MIN ** 2)


# Cosine schedule: alpha_bar(u) = cos^2(phi(u)) / cos^2(phi(0)), phi(u) = (u + s)/(1 + s) pi/2,
# run on u in [0, u_max] where beta(u) = pi tan(phi)/(1 + s) reaches COS_MAX_BETA.
U_MAX = np.arctan(COS_MAX_BETA * (1 + COS_S) / np.pi) * 2 * (1 + COS_S) / np.pi - COS_S


def cosine(t):
    u = U_MAX * t / T
    phi = (u + COS_S) / (1 + COS_S) * np.pi / 2
    phi0 = COS_S / (1 + COS_S) * np.pi / 2
    beta = (U_MAX / T) * np.pi / (1 + COS_S) * np.tan(phi)
    m = np.cos(phi) / np.cos(phi0)
    return -0.5 * beta, beta, m, np.sqrt(1 - m * m)


SDES = {"vp": (vp, 1.0), "subvp": (subvp, 1.0), "ve": (ve, SIGMA_MAX), "cosine": (cosine, 1.0)}


def score_and_laplacian(x, w, mu, cov, m, s):
    """Score and trace of the Hessian of log p_t for points x [N, D]."""
    d = x.shape[1]
    covs_t = m * m * cov + s * s * np.eye(d)
    prec = np.linalg.inv(covs_t)
    diff = x[:, None, :] - m * mu[None]                        # [N, K, D]
    sk = -np.einsum("kde,nke->nkd", prec, diff)                # component scores
    logdet = np.linalg.slogdet(covs_t)[1]
    logc = np.log(w) - 0.5 * (np.einsum("nkd,nkd->nk", -sk, diff) + logdet + d * np.log(2 * np.pi))
    r = np.exp(logc - logc.max(1, keepdims=True))
    r /= r.sum(1, keepdims=True)
    score = (r[:, :, None] * sk).sum(1)
    lap = (r * (-np.trace(prec, axis1=1, axis2=2)[None] + (sk * sk).sum(2))).sum(1) - (score * score).sum(1)
    return score, lap


def linear_velocity_and_divergence(x, w, mu, cov, t):
    """E[z - x0 | x_t] on the path x_t = (1 - t) x0 + t z, and its divergence, for points x [N, D].

    Per component k, with P = ((1 - t)^2 C_k + t^2 I)^-1 and r = x - (1 - t) mu_k:
    E[x0 | x, k] = mu_k + (1 - t) C_k P r, E[z | x, k] = t P r, so the velocity u_k = -mu_k + J_k r
    with J_k = (t I - (1 - t) C_k) P; the mixture's is sum_k p(k | x) u_k, whose divergence is
    sum_k p(k | x) (tr J_k + (s_k - s) . u_k), s_k = -P r the component scores."""
    n, d = x.shape
    m, s = 1.0 - t, t
    covs_t = m * m * cov + s * s * np.eye(d)
    prec = np.linalg.inv(covs_t)
    diff = x[:, None, :] - m * mu[None]
    sk = -np.einsum("kde,nke->nkd", prec, diff)
    logc = np.log(w) - 0.5 * (np.einsum("nkd,nkd->nk", -sk, diff) + np.linalg.slogdet(covs_t)[1])
    r = np.exp(logc - logc.max(1, keepdims=True))
    r /= r.sum(1, keepdims=True)
    jac = np.einsum("kde,kef->kdf", s * np.eye(d)[None] - m * cov, prec)  # [K, D, D]
    uk = -mu[None] + np.einsum("kde,nke->nkd", jac, diff)
    u = (r[:, :, None] * uk).sum(1)
    score = (r[:, :, None] * sk).sum(1)
    div = (r * (np.trace(jac, axis1=1, axis2=2)[None] + ((sk - score[:, None]) * uk).sum(2))).sum(1)
    return u, div


def mixture_logp(x, w, mu, cov):
    d = x.shape[1]
    prec = np.linalg.inv(cov)
    diff = x[:, None, :] - mu[None]
    maha = np.einsum("nkd,kde,nke->nk", diff, prec, diff)
    logc = np.log(w) - 0.5 * (maha + np.linalg.slogdet(cov)[1] + d * np.log(2 * np.pi))
    mx = logc.max(1, keepdims=True)
    return (mx + np.log(np.exp(logc - mx).sum(1, keepdims=True)))[:, 0]


def loglik(x, sde, w, mu, cov):
    coeffs, prior_std = SDES[sde] if sde != "linear" else (None, 1.0)
    n, d = x.shape

    def rhs(t, state):
        xs = state[: n * d].reshape(n, d)
        if sde == "linear":
            u, div = linear_velocity_and_divergence(xs, w, mu, cov, t)
            return np.concatenate([u.ravel(), div])
        f, g2, m, s = coeffs(t)
        score, lap = score_and_laplacian(xs, w, mu, cov, m, s)
        return np.concatenate([(f * xs - 0.5 * g2 * score).ravel(), f * d - 0.5 * g2 * lap])

    sol = solve_ivp(rhs, (T_EPS, T), np.concatenate([x.ravel(), np.zeros(n)]), method="DOP853", rtol=1e-12, atol=1e-12)
    assert sol.success, sol.message
    end = sol.y[:, -1]
    xT, delta = end[: n * d].reshape(n, d), end[n * d:]
    prior = -0.5 * (xT ** 2).sum(1) / prior_std ** 2 - d * np.log(prior_std) - 0.5 * d * np.log(2 * np.pi)
    return prior + delta


def main(out):
    rng = np.random.default_rng(7)
    k, d = 3, 2
    w = np.array([0.5, 0.3, 0.2])
    mu = rng.normal(0, 2, (k, d))
    a = rng.normal(0, 0.5, (k, d, d))
    cov = a @ a.transpose(0, 2, 1) + 0.1 * np.eye(d)
    np.savez_compressed(f"{out}/gmm.npz", weights=w, means=mu, covs=cov)
    comp = rng.choice(k, 16, p=w)
    x = mu[comp] + np.einsum("nde,ne->nd", np.linalg.cholesky(cov)[comp], rng.normal(size=(16, d)))
    np.save(f"{out}/points.npy", x)
    np.save(f"{out}/mixture_logp.npy", mixture_logp(x, w, mu, cov))
    for sde in list(SDES) + ["linear"]:
        np.save(f"{out}/expected_{sde}.npy", loglik(x, sde, w, mu, cov))


if __name__ == "__main__":
    main(sys.argv[1])
