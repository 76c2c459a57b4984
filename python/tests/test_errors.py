"""Bad input from Python: a clear exception with a one-line message, and nothing written."""

import numpy as np
import pytest

import sbgm

GOOD = np.random.default_rng(0).normal(size=(100, 2))
FAST = {"train.steps": 20, "model.width": 8}


def one_line(excinfo):
    text = str(excinfo.value)
    assert text and "\n" not in text, text
    return text


@pytest.mark.parametrize("data, error, words", [
    (np.array([["a", "b"]]), TypeError, "dtype"),
    (np.ones((10, 2), dtype=bool), TypeError, "dtype"),
    (np.zeros((0, 2)), ValueError, "0 rows"),
    (np.zeros(5), ValueError, "shape"),
    (np.array([[1.0, np.nan]] * 10), ValueError, "NaN"),
    (np.array([[1e35, 0.0]] * 10), ValueError, "1e30"),
    ([[1.0, 2.0], [3.0]], TypeError, "not an array"),
])
def test_bad_training_rows(tmp_path, data, error, words):
    out = tmp_path / "run"
    with pytest.raises(error) as e:
        sbgm.train(data, out=out, config=FAST, progress=False)
    assert words in one_line(e)
    assert not out.exists()  # nothing written


@pytest.mark.parametrize("config, words", [
    ({"train.nope": 1}, "train.nope"),
    ({"train.steps": "many"}, "train.steps"),
    ({"model.depth": 100000}, "model.depth"),
    ({"data.file": "x.npy"}, "data.file"),
    ({"data.bounds": "box"}, "data.bounds"),
    ({"data.keep_within": "clip"}, "data.keep_within"),
    ({"data.cond_set": -2}, "data.cond_set must be auto or in [0, 65536]"),
    ({"data.cond_set": "pairs"}, "data.cond_set"),
    ({"data.transform": "exp"}, "unknown transform 'exp'"),
])
def test_bad_config(tmp_path, config, words):
    with pytest.raises(ValueError) as e:
        sbgm.train(GOOD, out=tmp_path / "run", config=config, progress=False)
    assert words in one_line(e)
    assert not (tmp_path / "run").exists()


def test_conditions_that_do_not_fit(tmp_path):
    with pytest.raises(ValueError) as e:
        sbgm.train(GOOD, GOOD[:50], out=tmp_path / "run", config=FAST, progress=False)
    assert "50 condition rows for 100 data rows" in one_line(e)
    est = sbgm.PosteriorEstimator(tmp_path / "p", config=FAST)
    with pytest.raises(ValueError) as e:
        est.fit(GOOD, GOOD[:10], progress=False)
    assert "rows" in one_line(e)
    with pytest.raises(RuntimeError, match="not fitted"):
        est.sample(10, x=[0.0, 0.0])
    est.fit(GOOD, GOOD, progress=False)
    with pytest.raises(ValueError) as e:
        est.sample(10, x=[0.0, 0.0, 0.0], progress=False)
    assert "features" in one_line(e)
    with pytest.raises(ValueError) as e:
        est.sample(10, x=[0.0, np.inf], progress=False)
    assert "NaN or Inf" in one_line(e)
    with pytest.raises(ValueError) as e:
        est.model.sample(10, progress=False)  # a conditional model needs conditions
    assert "condition" in one_line(e)


def test_a_set_condition_must_be_whole_elements(tmp_path):
    x = np.random.default_rng(1).normal(size=(100, 6))  # three points in the plane
    for config, words in [({"data.cond_set": 4}, "data.cond_set = 4"),
                          ({"model.summary": "set"}, "needs data.cond_set")]:
        with pytest.raises(ValueError) as e:
            sbgm.train(GOOD, x, out=tmp_path / "run", config={**FAST, **config}, progress=False)
        assert words in one_line(e)
        assert not (tmp_path / "run").exists()


def test_log_normal_noise_levels_need_a_positive_finite_spread(tmp_path):
    for config, words in [({"train.log_noise_std": 0.0}, "train.log_noise_std must be positive and finite"),
                          ({"train.log_noise_mean": float("inf")}, "train.log_noise_mean")]:
        with pytest.raises(ValueError) as e:
            sbgm.train(GOOD, out=tmp_path / "run", config={**FAST, "train.time_sampling": "lognormal", **config},
                       progress=False)
        assert words in one_line(e)
        assert not (tmp_path / "run").exists()


def test_averaging_over_a_sets_orders(tmp_path):
    x = np.random.default_rng(1).normal(size=(100, 6))  # three points in the plane
    model = sbgm.train(GOOD, x, out=tmp_path / "run", config={**FAST, "data.cond_set": 2}, progress=False)
    xo = x[:2]
    reordered = xo.reshape(2, 3, 2)[:, [2, 0, 1]].reshape(2, 6)
    # over all 3! orders the points' order changes nothing
    a = model.sample(50, xo, set_orders=6, seed=1, progress=False)
    assert np.allclose(model.sample(50, reordered, set_orders=6, seed=1, progress=False), a, atol=1e-5)
    # and so is the averaged model's density
    rows = a[0][:5]
    lp = model.log_prob(rows, xo[0], set_orders=6, progress=False)
    assert np.all(np.isfinite(lp))
    assert np.allclose(model.log_prob(rows, reordered[0], set_orders=6, progress=False), lp, atol=1e-4)
    with pytest.raises(ValueError) as e:
        model.sample(10, xo, set_orders=0, progress=False)
    assert "set_orders must be at least 1" in one_line(e)
    for ask in (lambda: model.log_prob(rows, xo[0], set_orders=0, progress=False),
                lambda: model.diagnose(GOOD[:4], x[:4], samples=10, hpd_samples=5, set_orders=0, progress=False)):
        with pytest.raises(ValueError) as e:
            ask()
        assert "set_orders must be at least 1" in one_line(e)
    plain = sbgm.train(GOOD, x, out=tmp_path / "plain", config={**FAST, "data.cond_set": 0}, progress=False)
    with pytest.raises(ValueError) as e:
        plain.sample(10, xo, set_orders=2, progress=False)
    assert "no set (data.cond_set)" in one_line(e)


def test_bad_sampling_requests(tmp_path):
    model = sbgm.gaussian_mixture([1.0], [[0.0, 0.0]], [np.eye(2)])
    for kwargs, error, words in [
        (dict(n=0), ValueError, "n must"),
        (dict(n=10, steps=0), ValueError, "steps must"),
        (dict(n=10, sampler="magic"), ValueError, "magic"),
        (dict(n=10, cond=[[1.0]]), ValueError, "unconditional"),
        (dict(n=10, seed=-1), ValueError, "seed"),
        (dict(n=10, set_orders=2), ValueError, "not to a mixture"),
    ]:
        with pytest.raises(error) as e:
            model.sample(progress=False, **kwargs)
        assert words in one_line(e), kwargs
    with pytest.raises(ValueError) as e:
        model.log_prob(np.zeros((3, 5)), progress=False)
    assert one_line(e)
    with pytest.raises(ValueError) as e:
        model.log_prob(np.zeros((3, 2)), divergence="guess", progress=False)
    assert "guess" in one_line(e)


def test_errors_name_the_keywords_not_the_cli_flags():
    model = sbgm.gaussian_mixture([1.0], [[0.0, 0.0]], [np.eye(2)])
    for call, words in [
        (lambda: model.sample(10, sampler="dpmpp2m", lam=1.5, progress=False), "lam must lie in [0, 1]"),
        (lambda: model.sample(10, sampler="ddim", eta=0.5, lam=0.5, progress=False), "give ddim either eta or lam"),
        (lambda: model.sample(10, sampler="unipc", order=7, progress=False), "order (unipc) must be 1, 2 or 3"),
        (lambda: model.sample(10, cond=[[1.0]], progress=False), "it takes no conditions (cond)"),
        (lambda: model.inpaint(np.zeros((1, 2)), [1.0, 0.0], method="replace", sampler="pc", progress=False),
         "method replace runs Euler-Maruyama only (sampler em)"),
    ]:
        with pytest.raises(ValueError) as e:
            call()
        assert words in one_line(e) and "--" not in one_line(e), one_line(e)


def test_bad_mixtures():
    with pytest.raises(ValueError) as e:
        sbgm.gaussian_mixture([0.5, 0.5], [[0.0, 0.0]], [np.eye(2)])
    assert one_line(e)
    with pytest.raises(ValueError) as e:
        sbgm.gaussian_mixture([1.0], [[0.0, 0.0]], [-np.eye(2)])
    assert one_line(e)
    with pytest.raises(ValueError) as e:
        sbgm.gaussian_mixture([1.0], [[0.0, 0.0]], [np.eye(2)], sde="warp")
    assert "warp" in one_line(e)


def test_missing_and_damaged_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        sbgm.load(tmp_path / "nothing")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    with pytest.raises((OSError, ValueError)) as e:
        sbgm.load(tmp_path / "run")
    assert "checkpoint" in one_line(e)
    sbgm.train(GOOD, out=tmp_path / "u", config=FAST, progress=False)
    with pytest.raises(ValueError) as e:
        sbgm.PosteriorEstimator.load(tmp_path / "u")
    assert "unconditional" in one_line(e)


def test_set_threads_checks_its_argument():
    with pytest.raises(ValueError):
        sbgm.set_threads(-1)
    sbgm.set_threads(2)


def test_an_optimal_transport_flow_model_is_sampled_by_the_ode_only(tmp_path):
    """Its marginals are not the path's, so samplers that draw fresh noise along the score are refused."""
    config = {**FAST, "model.objective": "flow", "train.ot_coupling": True}
    m = sbgm.train(GOOD, out=tmp_path / "ot", config=config, progress=False)
    assert m.sample(5, sampler="unipc", steps=5, progress=False).shape == (5, 2)
    with pytest.raises(ValueError) as e:
        m.sample(5, sampler="dpmpp2m", lam=0.0, progress=False)
    assert "uses the path's score" in one_line(e)
