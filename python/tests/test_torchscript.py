"""Networks users bring: a scripted torch.nn.Module trained by sbgm in place of the built-in MLP,
given as a module or as a saved file, and the errors for modules that are not usable."""
import os
from typing import Optional

import numpy as np
import pytest

import sbgm

torch = pytest.importorskip("torch")


class ScoreMLP(torch.nn.Module):
    """The built-in MLP's architecture (tutorial time features, ReLU), written in PyTorch."""

    def __init__(self, dim: int, cond_dim: int = 0, width: int = 64, depth: int = 3):
        super().__init__()
        sizes = [dim + 4 + cond_dim] + [width] * depth
        self.hidden = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out = torch.nn.Linear(width, dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
        tc = t.unsqueeze(1)
        w = 6.283185307179586 * tc
        h = torch.cat([x, tc - 0.5, torch.cos(w), torch.sin(w), -torch.cos(2.0 * w)], 1)
        if y is not None:
            h = torch.cat([h, y], 1)
        for layer in self.hidden:
            h = torch.relu(layer(h))
        return self.out(h)


CONFIG = {"train": {"steps": 2000, "batch_size": 256}, "sample.n": 200}


def test_a_scripted_network_learns_what_the_built_in_one_does(tmp_path, gaussian_run):
    # The session's built-in run (conftest: the same data, steps and size) beside a scripted
    # network of the same architecture: the same tolerances hold for both.
    builtin, data, cov, _ = gaussian_run
    torch.manual_seed(0)
    model = sbgm.train(data, out=tmp_path / "scripted", config=CONFIG, progress=False,
                       network=torch.jit.script(ScoreMLP(2)))
    assert model.config["model.type"] == "torchscript"
    for m in (builtin, model):
        x = m.sample(3000, seed=0, progress=False)
        np.testing.assert_allclose(x.mean(0), [1.0, -2.0], atol=0.12)
        np.testing.assert_allclose(np.cov(x.T), cov, atol=0.15)
    rows = data[:300]
    gap = abs(model.log_prob(rows, progress=False).mean() - builtin.log_prob(rows, progress=False).mean())
    assert gap < 0.1


def test_a_saved_module_trains_and_the_checkpoint_keeps_it(tmp_path):
    rng = np.random.default_rng(2)
    theta = rng.normal(size=(600, 2))
    x = theta + 0.3 * rng.normal(size=(600, 2))
    path = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(ScoreMLP(2, cond_dim=2, width=16, depth=2)), str(path))
    est = sbgm.PosteriorEstimator(tmp_path / "run", network=path, config={"train.steps": 100}).fit(theta, x,
                                                                                                 progress=False)
    assert est.model.config["model.file"] == os.fspath(path)
    os.remove(path)
    again = sbgm.PosteriorEstimator.load(tmp_path / "run")
    assert again.sample(20, x=x[0], progress=False).shape == (20, 2)


def test_unusable_networks_are_refused_before_anything_is_written(tmp_path):
    data = np.random.default_rng(3).normal(size=(100, 2))

    def refused(network, error, text):
        out = tmp_path / "never"
        with pytest.raises(error) as e:
            sbgm.train(data, out=out, config={"train.steps": 10}, progress=False, network=network)
        assert text in str(e.value) and "\n" not in str(e.value)
        assert not out.exists()

    refused(ScoreMLP(2), TypeError, "torch.jit.script(module)")
    refused(42, TypeError, "not int")

    class Narrow(torch.nn.Module):
        def forward(self, x: torch.Tensor, t: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
            return x[:, :1]

    refused(torch.jit.script(Narrow()), ValueError, "must be shaped like x")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a module")
    refused(junk, ValueError, "not a TorchScript module")
    refused(tmp_path / "missing.pt", OSError, "cannot open")
