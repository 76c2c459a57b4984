"""Neural posterior score estimation with the shapes an SBI user knows (as in sbi):
fit p(theta | x) on simulated pairs, then sample it, evaluate it and find its mode at an observation."""

from __future__ import annotations

import os
import tempfile
from typing import Any, Mapping, Optional, Sequence


from .model import ArrayLike, Model, ProgressArg, Result, _rows, load, train


class PosteriorEstimator:
    """p(theta | x) learnt by conditional score matching from simulated pairs (theta, x).

    With no arguments the run chooses everything itself (the settings of `sbgm train` for
    conditional data: the VE SDE, 30,000 steps with a cosine decay, a tenth of the pairs held out
    and the best held-out weights kept, the network trained with a linear-Gaussian fit of the
    pairs and without it and the one with the lower held-out loss kept, the reverse SDE by
    DPM-Solver++ 2M in 50 steps for sampling), which is what docs/sbi.md measures on the sbibm benchmark.

    objective: "score" (neural posterior score estimation) or "flow" (flow matching posterior
    estimation, FMPE: the network learns the velocity of the straight path from noise to the
    posterior, sampled and evaluated by the ODE).

    out: the run directory (checkpoint, config.toml, loss.csv); default a temporary directory
    kept as long as this estimator. lower / upper: the prior's box (one value for every
    parameter or one per parameter; +-inf for an open side), so that no posterior sample leaves
    it. config: any other keys of the run's config ({"train.steps": 5000}). network: your own
    network of (theta_t, t, x) instead of the built-in ones, as for sbgm.train.
    """

    def __init__(
        self,
        out: Optional[str | os.PathLike] = None,
        *,
        lower: Optional[float | Sequence[float]] = None,
        upper: Optional[float | Sequence[float]] = None,
        config: Optional[Mapping[str, Any]] = None,
        objective: str = "score",
        seed: int = 0,
        network: Any = None,
    ) -> None:
        self._tmp: Optional[tempfile.TemporaryDirectory[str]] = None
        if out is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="sbgm-posterior-")
            out = os.path.join(self._tmp.name, "run")
        self.out = os.fspath(out)
        keys: dict[str, Any] = dict(config or {})
        if lower is not None:
            keys["data.lower"] = lower
        if upper is not None:
            keys["data.upper"] = upper
        keys.setdefault("model.objective", objective)
        keys.setdefault("train.seed", seed)
        self.config = keys
        self.network = network
        self.model: Optional[Model] = None

    @classmethod
    def load(cls, path: str | os.PathLike) -> "PosteriorEstimator":
        """An estimator from a run directory written by fit() or `sbgm train --cond`."""
        est = cls(out=path)
        est.model = load(path)
        if est.model.cond_dim == 0:
            raise ValueError(f"{os.fspath(path)}: the model is unconditional, not a posterior p(theta | x)")
        return est

    def fit(self, theta: ArrayLike, x: ArrayLike, *, resume: bool = False, progress: ProgressArg = True) -> "PosteriorEstimator":
        """Train on simulated pairs: theta [N, P] drawn from the prior, x [N, ...] simulated from each."""
        t = _rows(theta, "theta")
        xs = _rows(x, "x")
        if t.shape[0] != xs.shape[0]:
            raise ValueError(f"theta has {t.shape[0]} rows but x has {xs.shape[0]}: one simulation per parameter row")
        self.model = train(t, xs.reshape(xs.shape[0], -1), out=self.out, config=self.config, resume=resume,
                           progress=progress, network=self.network)
        return self

    def _fitted(self) -> Model:
        if self.model is None:
            raise RuntimeError("the estimator is not fitted: call fit(theta, x) first")
        return self.model

    def sample(self, n: int, x: ArrayLike, *, iid: bool = False, seed: int = 0, progress: ProgressArg = True,
               **sampling: Any) -> Result:
        """n posterior samples at the observation x: [n, P] for one observation [D], [M, n, P] for M
        observations [M, D] each on its own, or with iid=True [n, P] of p(theta | all M of them).
        Further keywords (sampler, steps, log_prob, ...) as in Model.sample: log_prob=True returns
        (samples, log_prob), each sample's log q(theta | x) from the ODE that drew it."""
        model = self._fitted()
        if iid:
            return model.sample_iid(n, x, seed=seed, progress=progress, **sampling)
        return model.sample(n, x, seed=seed, progress=progress, **sampling)

    def log_prob(self, theta: ArrayLike, x: ArrayLike, *, progress: ProgressArg = True, **options: Any) -> Result:
        """log p(theta | x) in nats for each row of theta [N, P], at one observation x [D] or one
        per row [N, D] (with the bounds' log-Jacobian when the prior has a box)."""
        model = self._fitted()
        _rows(theta, "theta", min_dim=1)  # errors name theta, not the model's x
        return model.log_prob(theta, x, progress=progress, **options)

    def map(self, x: ArrayLike, *, starts: int = 100, seed: int = 0, progress: ProgressArg = True) -> Result:
        """The posterior mode at x ([P] for one observation [D], [M, P] for M)."""
        return self._fitted().map(x, starts=starts, seed=seed, progress=progress)

    def diagnose(self, theta: ArrayLike, x: ArrayLike, *, progress: ProgressArg = True, **options: Any) -> dict[str, Any]:
        """Calibration on held-out simulations theta [S, P], x [S, D] drawn from the prior and the
        simulator apart from the training pairs: SBC, highest-density coverage and TARP, as
        Model.diagnose returns them (options as there)."""
        return self._fitted().diagnose(theta, x, progress=progress, **options)

    def __repr__(self) -> str:
        state = repr(self.model) if self.model is not None else "not fitted"
        return f"sbgm.PosteriorEstimator({state})"
