"""Training from arrays, loading, sampling, log-densities and resuming, on a 2-D Gaussian."""
import os
import signal

import numpy as np
import pytest
from scipy.stats import multivariate_normal

import sbgm


def test_the_run_directory_and_its_config(gaussian_run):
    model, data, cov, out = gaussian_run
    for name in ["checkpoint.safetensors", "config.toml", "loss.csv", "samples.npy"]:
        assert (out / name).exists(), name
    config = model.config
    assert config["train.steps"] == 2000 and config["model.width"] == 64
    assert config["sde.type"] in ("vp", "ve") and config["sample.sampler"] != "auto"  # auto keys settled
    assert model.step == 2000 and model.cond_dim == 0 and model.data_shape == (2,)
    assert model.parameter_count > 1000


def test_samples_match_the_data(gaussian_run):
    model, data, cov, _ = gaussian_run
    x = model.sample(3000, seed=0, progress=False)
    assert x.shape == (3000, 2) and x.dtype == np.float32
    np.testing.assert_allclose(x.mean(0), [1.0, -2.0], atol=0.12)
    np.testing.assert_allclose(np.cov(x.T), cov, atol=0.15)


def test_log_prob_is_near_the_true_density(gaussian_run):
    model, data, cov, _ = gaussian_run
    rows = data[:200]
    logp = model.log_prob(rows, progress=False)
    exact = multivariate_normal([1.0, -2.0], cov).logpdf(rows)
    assert logp.shape == (200,)
    assert abs(logp.mean() - exact.mean()) < 0.15
    # A single row of shape [D] is one row.
    assert model.log_prob(rows[0], progress=False).shape == (1,)


def test_load_gives_the_same_model(gaussian_run):
    model, _, _, out = gaussian_run
    again = sbgm.load(out)
    np.testing.assert_array_equal(model.sample(100, seed=4, progress=False), again.sample(100, seed=4, progress=False))
    raw = sbgm.load(out / "checkpoint.safetensors", ema=False)
    assert raw.step == model.step
    assert "trained, step 2000" in repr(again)


def test_non_contiguous_and_integer_arrays_are_taken(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.normal(size=(2, 600)).T  # a transposed view: not C-contiguous
    assert not data.flags.c_contiguous
    a = sbgm.train(data, out=tmp_path / "a", config={"train.steps": 100, "model.width": 16}, progress=False)
    b = sbgm.train(np.ascontiguousarray(data), out=tmp_path / "b", config={"train.steps": 100, "model.width": 16},
                   progress=False)
    np.testing.assert_array_equal(a.sample(10, progress=False), b.sample(10, progress=False))
    ints = sbgm.train(rng.integers(0, 5, size=(300, 2)), out=tmp_path / "c",
                      config={"train.steps": 50, "model.width": 8}, progress=False)
    assert ints.sample(5, progress=False).shape == (5, 2)


def test_ctrl_c_stops_training_with_a_checkpoint_and_resume_finishes(tmp_path):
    rng = np.random.default_rng(2)
    data = rng.normal(size=(500, 2))
    out = tmp_path / "run"
    config = {"train.steps": 3000, "train.log_every": 100, "train.checkpoint_every": 0, "model.width": 16}
    sent = []

    def interrupt(done, total):
        if done >= 300 and not sent:
            sent.append(done)
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        sbgm.train(data, out=out, config=config, progress=interrupt)
    stopped = sbgm.load(out)
    assert 300 <= stopped.step < 3000  # stopped at the next report, with its checkpoint
    model = sbgm.train(data, out=out, config=config, resume=True, progress=False)
    assert model.step == 3000


def test_progress_bar_goes_to_stderr(tmp_path, capfd):
    sbgm.train(np.random.default_rng(3).normal(size=(200, 2)), out=tmp_path / "r",
               config={"train.steps": 200, "model.width": 8}, progress=True)
    err = capfd.readouterr().err
    assert "train" in err and "100.0%" in err or "200/200" in err


def test_config_keys_are_listed():
    keys = sbgm.config_keys()
    assert "train.steps" in keys and "model.width" in keys and keys["train.steps"]
