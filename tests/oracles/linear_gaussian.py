"""Independent oracle for conditional models: the posterior of a linear-Gaussian model,
theta ~ N(m0, S0), x = H theta + N(0, R), written as a conditional Gaussian mixture for
`sbgm --gmm` (weights [1], means [1, P], covs [1, P, P], cond_maps [1, P, X]), with
observations, posterior draws and their exact log-densities from scipy.

    python3 linear_gaussian.py OUT_DIR

writes OUT_DIR/posterior.npz, OUT_DIR/prior.npz (the prior, an unconditional mixture), observations.npy [M, X], theta.npy [M, P] (one draw per
observation), logp.npy [M] (log p(theta | x) by scipy), post_means.npy [M, P] and post_cov.npy
[P, P]. The posterior is computed by conditioning the joint Gaussian (the Schur complement).

For inpainting with the prior as the model it also writes inpaint_obs.npy [2, P] (NaN where
unobserved), inpaint_mask.npy (bool [P]: features 0 and 2 observed), and the conditional of
feature 1 given them: inpaint_means.npy [2] and inpaint_var.npy [] . For calibration checks, 200
held-out simulations from the joint: sbc_theta.npy [200, P] and sbc_x.npy [200, X]. For iid
posteriors, n = 1, 5, 20 observations of one theta: iid_obs_N.npy, iid_mean_N.npy, iid_cov_N.npy.
"""
import sys
import numpy as np
from scipy.stats import multivariate_normal

out = sys.argv[1]
rng = np.random.default_rng(7)
m0 = np.array([0.5, -1.0, 0.0])
S0 = np.array([[1.0, 0.3, 0.0], [0.3, 0.8, -0.2], [0.0, -0.2, 0.5]])
H = np.array([[1.0, 0.5, 0.0], [0.0, -1.0, 2.0]])
R = np.array([[0.2, 0.05], [0.05, 0.3]])

gain = S0 @ H.T @ np.linalg.inv(H @ S0 @ H.T + R)  # [P, X]
cov = S0 - gain @ H @ S0
cov = (cov + cov.T) / 2
# mean(x) = m0 + gain (x - H m0) = (m0 - gain H m0) + gain x
np.savez(f"{out}/posterior.npz", weights=np.ones(1), means=(m0 - gain @ H @ m0)[None], covs=cov[None],
         cond_maps=gain[None])

np.savez(f"{out}/prior.npz", weights=np.ones(1), means=m0[None], covs=S0[None])

theta_true = rng.multivariate_normal(m0, S0, size=4)
obs = theta_true @ H.T + rng.multivariate_normal(np.zeros(2), R, size=4)
means = m0 + (obs - H @ m0) @ gain.T
theta = np.stack([rng.multivariate_normal(m, cov) for m in means])
np.save(f"{out}/observations.npy", obs)
np.save(f"{out}/theta.npy", theta)
np.save(f"{out}/post_means.npy", means)
np.save(f"{out}/post_cov.npy", cov)
np.save(f"{out}/logp.npy", np.array([multivariate_normal(m, cov).logpdf(t) for m, t in zip(means, theta)]))

mask = np.array([True, False, True])
inp = np.array([[1.0, np.nan, -0.5], [0.0, np.nan, 1.0]])
k, u = np.where(mask)[0], np.where(~mask)[0]
g = S0[np.ix_(u, k)] @ np.linalg.inv(S0[np.ix_(k, k)])
np.save(f"{out}/inpaint_obs.npy", inp)
np.save(f"{out}/inpaint_mask.npy", mask)
np.save(f"{out}/inpaint_means.npy", np.array([(m0[u] + g @ (row[k] - m0[k]))[0] for row in inp]))
np.save(f"{out}/inpaint_var.npy", np.array((S0[np.ix_(u, u)] - g @ S0[np.ix_(k, u)])[0, 0]))
# Held-out simulations from the joint for calibration checks (a stream of their own, so the
# draws above are unchanged): sbc_theta.npy [200, P], sbc_x.npy [200, X].
sims = np.random.default_rng(11)
sbc_theta = sims.multivariate_normal(m0, S0, size=200)
np.save(f"{out}/sbc_theta.npy", sbc_theta)
np.save(f"{out}/sbc_x.npy", sbc_theta @ H.T + sims.multivariate_normal(np.zeros(2), R, size=200))
# Independent observations of one theta for iid posteriors (a stream of their own): for n = 1, 5
# and 20, iid_obs_N.npy [N, X] and the exact posterior given all N, iid_mean_N.npy [P] and
# iid_cov_N.npy [P, P] (precision S0^-1 + N H^T R^-1 H).
iid = np.random.default_rng(13)
theta_iid = iid.multivariate_normal(m0, S0)
Rinv, S0inv = np.linalg.inv(R), np.linalg.inv(S0)
for n in (1, 5, 20):
    xs = theta_iid @ H.T + iid.multivariate_normal(np.zeros(2), R, size=n)
    cov_n = np.linalg.inv(S0inv + n * H.T @ Rinv @ H)
    np.save(f"{out}/iid_obs_{n}.npy", xs)
    np.save(f"{out}/iid_mean_{n}.npy", cov_n @ (S0inv @ m0 + H.T @ Rinv @ xs.sum(0)))
    np.save(f"{out}/iid_cov_{n}.npy", (cov_n + cov_n.T) / 2)
