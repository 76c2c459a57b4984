"""Simulators, reference posteriors and the C2ST metric for the SBI examples (NumPy, SciPy and
scikit-learn; used by the example scripts only, never by sbgm itself).

    python3 tasks.py simulate TASK BUDGET OUT_DIR   # theta.npy [B, P], x.npy [B, X] from the prior predictive
    python3 tasks.py observe TASK OUT_DIR           # observations.npy [10, X], reference.npy [10, 10000, P]
    python3 tasks.py c2st SAMPLES.npy REFERENCE.npy # C2ST accuracy per observation and their mean

Tasks (as in sbibm, Lueckmann et al. 2021):
  gaussian_linear: theta ~ N(0, 0.1 I_10), x ~ N(theta, 0.1 I_10); posterior N(x / 2, 0.05 I).
  two_moons: theta ~ U[-1, 1]^2, a ~ U[-pi/2, pi/2], r ~ N(0.1, 0.01^2),
             x = (r cos a + 0.25, r sin a) + (-|t1 + t2| / sqrt 2, (-t1 + t2) / sqrt 2);
             reference posterior by rejection-free inversion of the simulator (below).
"""
import sys
import numpy as np

N_OBS, N_REF = 10, 10000


def gaussian_linear(theta, rng):
    return theta + np.sqrt(0.1) * rng.standard_normal(theta.shape)


def gaussian_linear_prior(n, rng):
    return np.sqrt(0.1) * rng.standard_normal((n, 10))


def two_moons_prior(n, rng):
    return rng.uniform(-1, 1, size=(n, 2))


def two_moons(theta, rng):
    n = len(theta)
    a = rng.uniform(-np.pi / 2, np.pi / 2, n)
    r = 0.1 + 0.01 * rng.standard_normal(n)
    p = np.stack([r * np.cos(a) + 0.25, r * np.sin(a)], 1)
    t1, t2 = theta[:, 0], theta[:, 1]
    return p + np.stack([-np.abs(t1 + t2) / np.sqrt(2), (-t1 + t2) / np.sqrt(2)], 1)


def two_moons_reference(x, n, rng):
    """Exact posterior draws for one observation: the simulator is invertible given (a, r).
    For x, draw (a, r) from their priors; then q = x - p(a, r) gives |t1 + t2| = -sqrt2 q0 and
    t2 - t1 = sqrt2 q1, i.e. two mirror solutions (equal weight); keep those inside the prior box.
    The Jacobian of theta -> (|t1+t2|, t2-t1) is constant, so accepted draws are exact."""
    out = []
    while sum(len(o) for o in out) < n:
        m = 4 * n
        a = rng.uniform(-np.pi / 2, np.pi / 2, m)
        r = 0.1 + 0.01 * rng.standard_normal(m)
        q0 = x[0] - (r * np.cos(a) + 0.25)
        q1 = x[1] - r * np.sin(a)
        s = -np.sqrt(2) * q0                     # |t1 + t2|, must be >= 0
        d = np.sqrt(2) * q1                      # t2 - t1
        sign = np.where(rng.uniform(size=m) < 0.5, 1.0, -1.0)
        t_sum = sign * s
        theta = np.stack([(t_sum - d) / 2, (t_sum + d) / 2], 1)
        ok = (s >= 0) & (np.abs(theta) <= 1).all(1)
        out.append(theta[ok])
    return np.concatenate(out)[:n]


TASKS = {
    "gaussian_linear": (gaussian_linear_prior, gaussian_linear),
    "two_moons": (two_moons_prior, two_moons),
}


def reference(task, x, rng):
    if task == "gaussian_linear":
        return x / 2 + np.sqrt(0.05) * rng.standard_normal((N_REF, 10))
    return two_moons_reference(x, N_REF, rng)


def c2st(a, b, seed=1):
    """Classifier two-sample test as sbibm computes it: z-score by the first set, an MLP with two
    hidden layers of 10 D units, 5-fold cross-validated accuracy (0.5: indistinguishable). One
    change for speed on small machines: early stopping on a 10% validation split (sbibm trains to
    max_iter; ~10x slower here)."""
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.neural_network import MLPClassifier
    mean, std = a.mean(0), a.std(0)
    X = np.concatenate([(a - mean) / std, (b - mean) / std])
    y = np.concatenate([np.zeros(len(a)), np.ones(len(b))])
    d = a.shape[1]
    clf = MLPClassifier(activation="relu", hidden_layer_sizes=(10 * d, 10 * d), max_iter=1000, solver="adam",
                        early_stopping=True, random_state=seed)
    return float(np.mean(cross_val_score(clf, X, y, cv=KFold(5, shuffle=True, random_state=seed), scoring="accuracy")))


def main():
    cmd = sys.argv[1]
    if cmd == "simulate":
        task, budget, out = sys.argv[2], int(sys.argv[3]), sys.argv[4]
        prior, sim = TASKS[task]
        rng = np.random.default_rng(budget)
        theta = prior(budget, rng)
        np.save(f"{out}/theta.npy", theta)
        np.save(f"{out}/x.npy", sim(theta, rng))
    elif cmd == "observe":
        task, out = sys.argv[2], sys.argv[3]
        prior, sim = TASKS[task]
        rng = np.random.default_rng(12345)
        theta = prior(N_OBS, rng)
        obs = sim(theta, rng)
        np.save(f"{out}/observations.npy", obs)
        np.save(f"{out}/reference.npy", np.stack([reference(task, o, rng) for o in obs]))
    elif cmd == "c2st":
        s, r = np.load(sys.argv[2]), np.load(sys.argv[3])
        acc = [c2st(r[i], s[i]) for i in range(len(r))]
        print("c2st per observation:", " ".join(f"{a:.3f}" for a in acc))
        print(f"c2st mean: {np.mean(acc):.3f}")
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
