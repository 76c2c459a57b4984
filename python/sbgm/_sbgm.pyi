# The extension module's interface (sbgm's C++ library); use the sbgm package instead.
from typing import Callable, Optional

import numpy as np

torch_version: str

class Model:
    data_shape: list[int]
    cond_dim: int
    step: int
    analytic: bool
    parameter_count: int
    config_toml: str
    def sample(self, kind: str, n: int, cond: Optional[np.ndarray], seed: int, sampler: str, steps: int,
               lam: Optional[float], schedule: str, eta: float, order: int,
               guidance: float, set_orders: int, iid_draws: int, iid_method: str, log_prob: bool,
               divergence: str, probes: int, progress: Optional[Callable[[int, int], None]]
               ) -> tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray], str, int]: ...
    def log_prob(self, x: np.ndarray, cond: Optional[np.ndarray], seed: int, rtol: float, atol: float,
                 divergence: str, probes: int, chunk: int, bound: str, draws: int, bits_per_dim: bool,
                 dequantize: bool, levels: Optional[int], dequantize_range: Optional[tuple[float, float]],
                 set_orders: int, progress: Optional[Callable[[int, int], None]]) -> tuple[np.ndarray, np.ndarray, int]: ...
    def inpaint(self, observed: np.ndarray, mask: Optional[np.ndarray], noise_std: float, n: int, method: str,
                sampler: str, steps: int, lam: Optional[float], schedule: str, eta: float, order: int, seed: int,
                progress: Optional[Callable[[int, int], None]]) -> np.ndarray: ...
    def diagnose(self, theta: np.ndarray, x: np.ndarray, samples: int, hpd_samples: int, sampler: str, steps: int,
                 lam: Optional[float], schedule: str, eta: float, order: int, rtol: float, atol: float,
                 set_orders: int, seed: int, progress: Optional[Callable[[int, int], None]]) -> dict: ...

def load(path: str, ema: bool = True) -> Model: ...
def gaussian_mixture(weights: np.ndarray, means: np.ndarray, covs: np.ndarray, sde: str) -> Model: ...
def train(data: np.ndarray, cond: Optional[np.ndarray], run_dir: str, keys: dict[str, str], resume: bool,
          report: Optional[Callable[[int, int, float, float], None]],
          note: Optional[Callable[[str], None]], script: Optional[bytes]) -> tuple[int, bool, str]: ...
def config_keys() -> list[tuple[str, str]]: ...
def default_config_value(key: str) -> str: ...
def set_threads(threads: int) -> None: ...
