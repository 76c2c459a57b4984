"""sbgm: score-based generative models for scientific data, from Python.

Train a diffusion model on rows of data, sample it, and compute exact log-likelihoods through the
probability-flow ODE; or estimate posteriors p(theta | x) from simulations::

    import sbgm
    est = sbgm.PosteriorEstimator().fit(theta, x)     # simulated pairs
    samples = est.sample(10_000, x=x_o)               # [10000, P]
    logp = est.log_prob(theta_test, x=x_o)            # nats

    model = sbgm.train(data, out="runs/mine")         # unconditional density estimation
    model.sample(1000); model.log_prob(data[:100])
    model = sbgm.load("runs/mine")                    # a run of `sbgm train` too

Every call runs sbgm's C++ library (the code behind the `sbgm` command) with the GIL released.
Errors are ValueError / TypeError for values given, OSError for files, with one-line messages.
"""

from __future__ import annotations

import sys as _sys

from . import _sbgm
from .model import Model, config_keys, gaussian_mixture, load, train
from .posterior import PosteriorEstimator

__all__ = ["Model", "PosteriorEstimator", "config_keys", "gaussian_mixture", "load", "set_threads", "train"]
__version__ = "0.1.0"


def set_threads(threads: int) -> None:
    """CPU threads for sbgm's work (0: one per idle core, the default of every run)."""
    if int(threads) != threads or threads < 0:
        raise ValueError(f"threads must be a non-negative integer, got {threads}")
    _sbgm.set_threads(int(threads))


def _check_torch() -> None:
    # A process that also imports PyTorch must load the LibTorch this package was built against:
    # two LibTorch versions in one process crash in ways no message explains.
    torch = _sys.modules.get("torch")
    if torch is None:
        return
    built = _sbgm.torch_version
    loaded = str(getattr(torch, "__version__", "")).split("+")[0]
    if loaded and loaded.split(".")[:2] != built.split(".")[:2]:
        raise ImportError(
            f"sbgm was built against LibTorch {built} but this process loaded PyTorch {loaded}; "
            "rebuild sbgm against that PyTorch's LibTorch (README 'On a GPU machine')")


_check_torch()
_sbgm.set_threads(0)  # one thread per idle core, as every run of the CLI
