"""Models: train one on arrays, load one from a run directory, or build an analytic mixture;
then sample, evaluate log-densities and find posterior modes. Everything runs in sbgm's C++
library (the same code as the `sbgm` command), with the GIL released."""

from __future__ import annotations

import io
import math
import os
import sys
import tomllib
import warnings
from typing import TYPE_CHECKING, Any, Mapping, Optional, Union

import numpy as np

from . import _sbgm
from ._progress import Progress, ProgressArg

ArrayLike = Any  # anything numpy.asarray takes (arrays, nested lists), or a torch tensor
if TYPE_CHECKING:
    import torch

    Result = Union[np.ndarray, torch.Tensor]  # a torch tensor when an array argument was one
else:
    Result = np.ndarray


def _torch_tensor(a: Any) -> bool:
    """Whether `a` is a torch tensor (without importing torch: it is optional)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(a, torch.Tensor)


def _as_numpy(a: ArrayLike) -> np.ndarray:
    """`a` as a NumPy array, a CPU torch tensor of float32 or float64 as a view of its memory (no
    copy); other real tensors (integers, bfloat16, half, on a GPU) are converted to float64."""
    if _torch_tensor(a):
        torch = sys.modules["torch"]
        t = a.detach()
        if t.dtype == torch.bool or t.dtype.is_complex:
            raise TypeError(f"expected a tensor of real numbers, got dtype {t.dtype}")
        if t.dtype not in (torch.float32, torch.float64):
            t = t.double()
        return t.cpu().numpy()
    return np.asarray(a)


def _rows(a: ArrayLike, name: str, *, min_dim: int = 2) -> np.ndarray:
    """`a` as a C-contiguous float32 or float64 array, checked to hold real numbers. A float32 or
    float64 array (or CPU torch tensor) that is C-contiguous already is used as it is, not copied;
    anything else becomes float64."""
    try:
        arr = _as_numpy(a)
    except TypeError as e:
        raise TypeError(f"{name}: {e}") from None
    except Exception as e:  # ragged lists and the like
        raise TypeError(f"{name}: not an array of numbers ({e})") from None
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name}: expected an array of real numbers, got dtype {arr.dtype}")
    if arr.ndim < min_dim:
        raise ValueError(f"{name}: expected an array of shape [N, D] (or [N, ...]), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: has 0 rows, need at least 1")
    if arr.dtype in (np.float32, np.float64):
        return np.ascontiguousarray(arr)
    return np.ascontiguousarray(arr, dtype=np.float64)


def _like_inputs(out: Any, *inputs: Any) -> Any:
    """Results as torch tensors (sharing the arrays' memory) when any input was one, else as they are."""
    if not any(_torch_tensor(a) for a in inputs):
        return out
    torch = sys.modules["torch"]
    if isinstance(out, tuple):
        return tuple(torch.from_numpy(o) for o in out)
    return torch.from_numpy(out)


def _flatten_config(config: Optional[Mapping[str, Any]]) -> dict[str, str]:
    """{"train": {"steps": 10}} or {"train.steps": 10} -> {"train.steps": "10"} in TOML's spelling."""
    flat: dict[str, str] = {}

    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (list, tuple)):
            return ",".join(text(v) for v in value)
        return str(value)

    for key, value in (config or {}).items():
        if isinstance(value, Mapping):
            for sub, v in value.items():
                flat[f"{key}.{sub}"] = text(v)
        else:
            flat[str(key)] = text(value)
    return flat


def _parse_config(toml: str) -> dict[str, Any]:
    """The flat keys of a run's config.toml ("section.key" -> value)."""
    flat: dict[str, Any] = {}
    for section, keys in tomllib.loads(toml).items():
        if isinstance(keys, dict):
            for key, value in keys.items():
                flat[f"{section}.{key}"] = value
        else:
            flat[section] = keys
    return flat


def _check_counts(*, n: int, steps: Optional[int], seed: int, n_name: str = "n") -> None:
    """The counts every call takes, checked before any work."""
    if int(n) != n or n < 1:
        raise ValueError(f"{n_name} must be a positive integer, got {n}")
    if steps is not None and (int(steps) != steps or steps < 1):
        raise ValueError(f"steps must be a positive integer, got {steps}")
    if seed < 0:
        raise ValueError(f"seed must not be negative, got {seed}")


def _ode_range(r: Optional[tuple[float, float]]) -> Optional[tuple[float, float]]:
    """An ODE range as the library takes it: two numbers (low, high), or None."""
    if r is None:
        return None
    try:
        low, high = (float(v) for v in r)
    except (TypeError, ValueError):
        raise ValueError(f"ode_range must be two numbers (low, high), got {r!r}") from None
    return low, high


class Model:
    """A trained score model (or an analytic one) ready to sample from and evaluate.

    Get one from :func:`train`, :func:`load` or :func:`gaussian_mixture`. Arrays are in the data's
    own units (any standardisation and bounds the run used are undone).
    """

    def __init__(self, core: "_sbgm.Model", path: Optional[str] = None) -> None:
        self._core = core
        self.path = path

    # What the model is.
    @property
    def data_shape(self) -> tuple[int, ...]:
        """Shape of one sample (e.g. (2,) for 2-D vectors, (1, 28, 28) for images)."""
        return tuple(self._core.data_shape)

    @property
    def cond_dim(self) -> int:
        """Features of a condition (0 for an unconditional model)."""
        return self._core.cond_dim

    @property
    def step(self) -> int:
        """Training steps behind the weights (0 for an analytic model)."""
        return self._core.step

    @property
    def config(self) -> dict[str, Any]:
        """The run's settled configuration, flat ("train.steps" -> 30000), as in its config.toml."""
        return _parse_config(self._core.config_toml)

    @property
    def parameter_count(self) -> int:
        """Trainable parameters of the network (0 for an analytic model)."""
        return self._core.parameter_count

    def __repr__(self) -> str:
        kind = "analytic mixture" if self._core.analytic else f"trained, step {self.step}"
        cond = f", conditions of {self.cond_dim} features" if self.cond_dim else ""
        where = f", {self.path}" if self.path else ""
        return f"sbgm.Model({kind}, samples of shape {self.data_shape}{cond}{where})"

    # What it does.
    def sample(
        self,
        n: int,
        cond: Optional[ArrayLike] = None,
        *,
        seed: int = 0,
        sampler: Optional[str] = None,
        steps: Optional[int] = None,
        lam: Optional[float] = None,
        schedule: str = "auto",
        eta: float = 0.0,
        order: int = 2,
        ode_range: Optional[tuple[float, float]] = None,
        guidance: float = 0.0,
        set_orders: int = 1,
        log_prob: bool = False,
        divergence: str = "exact",
        probes: int = 1,
        support_draws: Optional[int] = None,
        return_std: bool = False,
        progress: ProgressArg = True,
    ) -> Result | tuple[Result, ...]:
        """Draw `n` samples: shape [n, *data_shape] for an unconditional model, [M, n, *data_shape]
        for M condition rows `cond` [M, cond_dim] (a single row [cond_dim] gives [n, ...]).

        log_prob=True: also each sample's log-density in nats ([n], or [M, n]), returned as
        (samples, log_prob): the density of the probability-flow ODE's draws, had in the same
        solve — what importance weights p / q need. The sampler must be "ode" (the default with
        log_prob). divergence: "exact" or "hutchinson" with `probes` probes; return_std=True also
        returns each value's standard error (Hutchinson's, and for a model kept within its prior's
        box the share of draws inside, by which the density is normalised; NaN marks a sample moved
        onto the box, which has none). support_draws: for such a model, the draws per condition
        that estimate that share where a condition has fewer samples (default 1000); its error is
        shared by all of a condition's samples and shrinks as 1 / sqrt(support_draws).

        sampler: "em" (reverse SDE), "pc", "ancestral", "ode" (probability flow), "edm", or the
        few-step solvers "ddim", "dpmpp2m", "dpmpp3m" (DPM-Solver++) and "unipc" (one network
        evaluation per step); default the run's own (sample.sampler in its config). steps: that
        sampler's steps (edm: noise levels); default the run's for its own kind of sampler, else
        18 for edm, 20 for the few-step solvers (50 for a posterior), 1000 for the others (200 for
        a posterior). lam: em, ddim, dpmpp2m and unipc follow the plug-in reverse SDE of this
        lambda, 0 (the reverse SDE) to 1 (the probability-flow ODE); default the run's
        (sample.lambda) with its own sampler, else the sampler's own (em 0, the others 1). schedule (the few-step
        solvers' step times): "auto", "logsnr", "time", "karras" or "adaptive"; eta: ddim's share of fresh
        noise per step; order: unipc's predictor order (1-3); ode_range: (low, high) with lam below 1, the
        steps that start at a noise-to-signal ratio sigma/m in [low, high] follow the probability-flow
        ODE instead (the noise above and below; unipc, steps=20, lam=0, ode_range=(0.3, 1) matched
        1000-step Euler-Maruyama on the 2-D sets of docs/samplers.md). guidance: classifier-free guidance
        scale for a model trained with condition dropout. set_orders: for a model whose condition
        is a declared set (data.cond_set) read by a network that sees its elements in order, the
        score averaged over this many orders of the elements (all when there are no more), at as
        many network evaluations.
        """
        single = False
        c = None
        if cond is not None:
            c = _as_numpy(cond)
            single = c.ndim == 1
            c = _rows(c.reshape(1, -1) if single else c, "cond")
        if return_std and not log_prob:
            raise ValueError("return_std goes with log_prob=True")
        draws = None if support_draws is None else int(support_draws)
        got = self._request("samples", n, c, seed, sampler, steps, guidance, 0, "gauss", progress, "sample",
                            (lam, schedule, eta, order, _ode_range(ode_range)), set_orders, (bool(log_prob), divergence, int(probes), draws))
        out = got[:3 if return_std else 2] if log_prob else (got,)
        if single:
            out = tuple(o[0] for o in out)
        return _like_inputs(out if log_prob else out[0], cond)

    def sample_iid(
        self,
        n: int,
        cond: ArrayLike,
        *,
        method: str = "gauss",
        draws: int = 1000,
        seed: int = 0,
        sampler: Optional[str] = None,
        steps: Optional[int] = None,
        progress: ProgressArg = True,
    ) -> Result:
        """`n` samples [n, *data_shape] of p(theta | x_1, ..., x_M) for M independent observations
        `cond` [M, cond_dim] of one theta, composed from this model of p(theta | x). method:
        "gauss" (scores weighted by Gaussian fits, exact for Gaussian posteriors; `draws` per
        observation for them) or "factorized" (the plain sum of scores)."""
        c = _rows(cond, "cond")
        return _like_inputs(self._request("iid", n, c, seed, sampler, steps, 0.0, draws, method, progress, "iid posterior"),
                            cond)

    def map(
        self,
        cond: Optional[ArrayLike] = None,
        *,
        starts: int = 100,
        seed: int = 0,
        progress: ProgressArg = True,
    ) -> Result:
        """The mode of p(theta | x) for each condition row ([M, *data_shape]; [*data_shape] for a
        single row or an unconditional model): gradient ascent along the score from `starts`
        posterior samples, the end point of highest density kept."""
        given = None if cond is None else _as_numpy(cond)
        single = given is None or given.ndim == 1
        c = None if given is None else _rows(given.reshape(1, -1) if given.ndim == 1 else given, "cond")
        out = self._request("map", starts, c, seed, None, None, 0.0, 0, "gauss", progress, "map")
        return _like_inputs(out[0] if single else out, cond)

    def log_prob(
        self,
        x: ArrayLike,
        cond: Optional[ArrayLike] = None,
        *,
        seed: int = 0,
        rtol: float = 1e-5,
        atol: float = 1e-5,
        divergence: str = "exact",
        probes: int = 1,
        chunk: int = 0,
        return_std: bool = False,
        bound: str = "ode",
        draws: int = 100,
        bits_per_dim: bool = False,
        dequantize: bool = False,
        levels: Optional[int] = None,
        dequantize_range: Optional[tuple[float, float]] = None,
        set_orders: int = 1,
        support_draws: Optional[int] = None,
        progress: ProgressArg = True,
    ) -> Result | tuple[Result, Result]:
        """log p(x) in nats for each row of `x` [N, *data_shape] (log p(x | cond) given one
        condition row per row of x, or a single row for all), through the probability-flow ODE
        (adaptive Dormand-Prince at rtol/atol). divergence: "exact" or "hutchinson" (with
        `probes` probes; return_std=True also returns each value's standard error).

        bound="elbo" gives instead the variational lower bound of the reverse SDE per row, a
        Monte-Carlo estimate over `draws` draws of (t, x_t) with its standard error (divergence as
        above); bound="elbo-dsm" the same bound in its denoising form, which needs no divergence
        (the form for images). Equal to the ODE's value for the true score, below the SDE's
        density otherwise.

        bits_per_dim=True: -log p / (D ln 2) instead of nats (and the standard error likewise).
        dequantize=True: the rows are integer levels in [0, levels), each dequantised to k + u,
        and the value is the bound on the discrete log-likelihood (`sbgm loglik --dequantize`);
        levels and dequantize_range (lo, hi) default to the model's pixel levels, or 256 and
        (0, 1) for a model of other data. set_orders: the density of the model whose score is
        averaged over that many orders of a set condition's elements, as in :meth:`sample`.
        support_draws: for a model kept within its prior's box by rejection, the draws per
        condition that estimate the share inside, which normalises log p (default 1000; its error,
        in the standard error, is shared by the rows of one condition and shrinks as
        1 / sqrt(support_draws))."""
        rows = _rows(x, "x", min_dim=1)
        if rows.ndim == 1:  # one row
            rows = rows.reshape(1, -1)
        c = None
        if cond is not None:
            c = _as_numpy(cond)
            c = _rows(c.reshape(1, -1) if c.ndim == 1 else c, "cond")
        if probes < 1:
            raise ValueError(f"probes must be at least 1, got {probes}")
        if draws < 1:
            raise ValueError(f"draws must be at least 1, got {draws}")
        with Progress(progress, "log_prob") as report:
            span = None if dequantize_range is None else (float(dequantize_range[0]), float(dequantize_range[1]))
            logp, std, _ = self._core.log_prob(rows, c, int(seed), float(rtol), float(atol), divergence, int(probes),
                                               int(chunk), bound, int(draws), bool(bits_per_dim), bool(dequantize),
                                               None if levels is None else int(levels), span, int(set_orders),
                                               None if support_draws is None else int(support_draws), report)
        return _like_inputs((logp, std) if return_std else logp, x, cond)

    def inpaint(
        self,
        observed: ArrayLike,
        mask: Optional[ArrayLike] = None,
        *,
        noise_std: float = 0.0,
        n: int = 1,
        method: Optional[str] = None,
        sampler: str = "em",
        steps: Optional[int] = None,
        lam: Optional[float] = None,
        schedule: str = "auto",
        eta: float = 0.0,
        order: int = 2,
        ode_range: Optional[tuple[float, float]] = None,
        seed: int = 0,
        progress: ProgressArg = True,
    ) -> Result:
        """Posterior samples of x given observations y = x + noise_std * n of the features `mask`
        marks (inpainting; denoising when every feature is observed): `n` samples per row of
        `observed` [N, *data_shape] (grey images may come as [N, H, W]; entries outside the mask may
        be anything, NaN too), returned as [N, n, *data_shape]. mask: 0/1, one for every row
        [*data_shape] or one per row [N, ...]; None observes every feature, which needs
        noise_std > 0. method: "moments" (Tweedie moment projection, exact for Gaussian data),
        "replace" (exact observations only, Euler-Maruyama) or "noise-level" (denoising from the
        time whose noise is the observation's); default as `sbgm inpaint` chooses (moments up to
        256 features). sampler, steps, lam, schedule, eta, order, ode_range: as in :meth:`sample`, with
        Euler-Maruyama ("em") unless named."""
        rows = _rows(observed, "observed", min_dim=1)
        m = None
        if mask is not None:
            m = np.ascontiguousarray(_as_numpy(mask), dtype=np.float64)
        _check_counts(n=n, steps=steps, seed=seed)
        with Progress(progress, "inpaint") as report:
            out = self._core.inpaint(rows, m, float(noise_std), int(n), method or "", sampler, int(steps or 0),
                                     None if lam is None else float(lam), schedule, float(eta), int(order),
                                     _ode_range(ode_range), int(seed), report)
        return _like_inputs(out, observed, mask)

    def diagnose(
        self,
        theta: ArrayLike,
        x: ArrayLike,
        *,
        samples: int = 1000,
        hpd_samples: int = 100,
        sampler: Optional[str] = None,
        steps: Optional[int] = None,
        lam: Optional[float] = None,
        schedule: str = "auto",
        eta: float = 0.0,
        order: int = 2,
        ode_range: Optional[tuple[float, float]] = None,
        rtol: float = 1e-5,
        atol: float = 1e-5,
        set_orders: int = 1,
        seed: int = 0,
        progress: ProgressArg = True,
    ) -> dict[str, Any]:
        """Calibration of this model of p(theta | x) on held-out simulations `theta` [S, D] and
        `x` [S, C] (simulated independently of training), as `sbgm diagnose` reports it: `samples`
        posterior samples per simulation give SBC ranks per parameter and TARP; the first
        `hpd_samples` of them get log-densities through the probability-flow ODE (rtol, atol) for
        the highest-density coverage (0: skip). Returns a dict: "ranks" [S, D], "levels" (the
        credibility levels of the coverage curves), "checks" {name: {"ks_statistic", "p_value",
        "mean_coverage_gap", "verdict", "coverage"}} for "sbc theta_d", "hpd" and "tarp", and the
        sampler and steps used (default the run's own, as in :meth:`sample`). set_orders: the
        model whose score is averaged over that many orders of a set condition's elements, for the
        samples and the log-densities alike (as in :meth:`sample`)."""
        t = _rows(theta, "theta")
        c = _rows(x, "x")
        _check_counts(n=samples, steps=steps, seed=seed, n_name="samples")
        with Progress(progress, "diagnose") as report:
            return self._core.diagnose(t, c, int(samples), int(hpd_samples), sampler or "", int(steps or 0),
                                       None if lam is None else float(lam), schedule, float(eta), int(order),
                                       _ode_range(ode_range), float(rtol), float(atol), int(set_orders), int(seed), report)

    def _request(self, kind: str, n: int, cond: Optional[np.ndarray], seed: int, sampler: Optional[str],
                 steps: Optional[int], guidance: float, draws: int, method: str, progress: ProgressArg,
                 desc: str, solver: tuple = (None, "auto", 0.0, 2, None), set_orders: int = 1,
                 density: tuple = (False, "exact", 1, None)) -> Any:
        """The samples alone, or with density (log_prob, divergence, probes, support_draws) asked
        for, (samples, log_prob, std)."""
        _check_counts(n=n, steps=steps, seed=seed)
        with Progress(progress, desc) as report:
            lam, schedule, eta, order, ode_range = solver
            samples, logp, std, kept, clamped = self._core.sample(
                kind, int(n), cond, int(seed), sampler or "", int(steps or 0), None if lam is None else float(lam),
                schedule, float(eta), int(order), ode_range, float(guidance), int(set_orders), int(draws), method, *density,
                report)
        # How the draws met the prior's box (data.keep_within = reject): a warning where the model
        # all but misses the box for some condition, a line beside the progress bar otherwise.
        if clamped:
            warnings.warn(kept, UserWarning, stacklevel=3)
        elif kept and progress is True:
            sys.stderr.write(kept + "\n")
        return (samples, logp, std) if density[0] else samples


def load(path: str | os.PathLike, *, ema: bool = True) -> Model:
    """The model of a run directory (or its checkpoint file) written by :func:`train` or
    `sbgm train`: its averaged weights (the best validated ones for a run with held-out rows),
    or the raw ones with ema=False."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such run directory or checkpoint")
    return Model(_sbgm.load(path, ema), path)


def gaussian_mixture(weights: ArrayLike, means: ArrayLike, covs: ArrayLike, *, sde: str = "vp") -> Model:
    """The exact model of a Gaussian mixture (weights [K], means [K, D], covs [K, D, D]) diffused by
    the SDE ("vp", "ve", "subvp" or "cosine"): sample it and evaluate log p exactly as a trained
    model is, to check a pipeline against the truth."""
    w = np.ascontiguousarray(_as_numpy(weights), dtype=np.float64)
    m = np.ascontiguousarray(_as_numpy(means), dtype=np.float64)
    c = np.ascontiguousarray(_as_numpy(covs), dtype=np.float64)
    return Model(_sbgm.gaussian_mixture(w, m, c, sde))


def train(
    data: ArrayLike,
    cond: Optional[ArrayLike] = None,
    *,
    out: str | os.PathLike,
    config: Optional[Mapping[str, Any]] = None,
    resume: bool = False,
    progress: ProgressArg = True,
    network: Any = None,
) -> Model:
    """Train a score model on rows `data` [N, ...] (with `cond` [N, C], a model of p(data | cond):
    for simulation-based inference, theta and x) into the run directory `out`, and return it.

    config: keys of the run's config.toml, flat ({"train.steps": 5000}) or nested
    ({"train": {"steps": 5000}}); every key left out takes its default, and keys whose default is
    "auto" are settled from the data (written to out/config.toml). Ctrl-C stops the run with a
    checkpoint (resume=True continues it) and raises KeyboardInterrupt.

    network: your own network instead of the built-in ones — a TorchScript module
    (torch.jit.script(module) or torch.jit.trace) or the path of one saved by torch.jit.save,
    whose forward(x, t, y: Optional[Tensor]) returns a tensor shaped like x (docs/python.md). It
    is trained in place of a copy of it; the checkpoint keeps it.
    """
    x = _rows(data, "data")
    c = None if cond is None else _rows(cond, "cond")
    keys = _flatten_config(config)
    script = _network(network, keys)
    for forbidden in ("data.file", "data.cond", "data.dataset"):
        if forbidden in keys:
            raise ValueError(f"{forbidden}: train() takes its rows as arrays; give the file's rows instead")
    out = os.fspath(out)
    with Progress(progress, "train") as report:

        def on_progress(step: int, total: int, loss: float, held_out: float) -> None:
            extra = f", loss {loss:.4g}" + ("" if math.isnan(held_out) else f", held-out {held_out:.4g}")
            report(step, total, extra)

        def on_note(text: str) -> None:
            if progress is True:
                report.newline()
                sys.stderr.write(text + "\n")

        _sbgm.train(x, c, out, keys, bool(resume), on_progress, on_note, script)
    return load(out)


def _network(network: Any, keys: dict[str, str]) -> Optional[bytes]:
    """Sets keys for a network the user brings; returns the bytes of a module given as an object."""
    if network is None:
        return None
    keys["model.type"] = "torchscript"
    if isinstance(network, (str, os.PathLike)):
        keys["model.file"] = os.fspath(network)
        return None
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(network, torch.jit.ScriptModule):
        buffer = io.BytesIO()
        torch.jit.save(network, buffer)
        keys["model.file"] = ""
        return buffer.getvalue()
    if torch is not None and isinstance(network, torch.nn.Module):
        raise TypeError("network: script the module first, torch.jit.script(module) (or torch.jit.trace)")
    raise TypeError(f"network: a TorchScript module or the path of one, not {type(network).__name__}")


def config_keys() -> dict[str, str]:
    """Every config key ("section.name") with its help text."""
    return dict(_sbgm.config_keys())
