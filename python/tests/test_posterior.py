"""PosteriorEstimator on a linear-Gaussian simulator, whose posteriors are analytic:
theta ~ N(0, I), x = theta + N(0, 0.5^2 I), so p(theta | x) = N(0.8 x, 0.2 I) and, for M
observations of one theta, N(4 sum(x) / (1 + 4 M), I / (1 + 4 M))."""
import numpy as np
import pytest

import sbgm

# A 3 x 128 network: these posteriors are smooth, and the default 4 x 256 one, trained on one
# thread, would take this file past its time limit.
SMALL = {"model.width": 128, "model.depth": 3}


@pytest.fixture(scope="module")
def estimator(tmp_path_factory):
    rng = np.random.default_rng(0)
    theta = rng.normal(size=(4000, 2))
    x = theta + 0.5 * rng.normal(size=theta.shape)
    out = tmp_path_factory.mktemp("post") / "run"
    est = sbgm.PosteriorEstimator(out, config={"train.steps": 4000, **SMALL}).fit(theta, x, progress=False)
    return est


def test_samples_match_the_analytic_posterior(estimator):
    x_o = np.array([0.5, -1.0])
    s = estimator.sample(4000, x=x_o, progress=False)
    assert s.shape == (4000, 2)
    np.testing.assert_allclose(s.mean(0), 0.8 * x_o, atol=0.08)
    np.testing.assert_allclose(s.std(0), np.sqrt(0.2), rtol=0.15)
    both = estimator.sample(500, x=np.stack([x_o, -x_o]), progress=False)
    assert both.shape == (2, 500, 2)
    assert both[0].mean(0) @ both[1].mean(0) < 0


def test_log_prob_and_map(estimator):
    x_o = np.array([0.5, -1.0])
    theta = np.array([[0.4, -0.8], [0.0, 0.0], [1.0, -1.5]])
    logp = estimator.log_prob(theta, x=x_o, progress=False)
    d = theta - 0.8 * x_o
    exact = -np.log(2 * np.pi * 0.2) - (d ** 2).sum(1) / (2 * 0.2)
    np.testing.assert_allclose(logp, exact, atol=0.25)
    mode = estimator.map(x_o, progress=False)
    assert mode.shape == (2,)
    np.testing.assert_allclose(mode, 0.8 * x_o, atol=0.1)


def test_samples_with_their_log_density(estimator):
    """Posterior draws with their log q: the analytic posterior's density to what the network
    learnt, and log_prob's value at the same draws; [M, n] for M observations."""
    x_o = np.array([0.5, -1.0])
    s, logq = estimator.sample(300, x=x_o, log_prob=True, progress=False)
    assert s.shape == (300, 2) and logq.shape == (300,)
    d = s - 0.8 * x_o
    exact = -np.log(2 * np.pi * 0.2) - (d ** 2).sum(1) / (2 * 0.2)
    assert np.abs(logq - exact).mean() < 0.15
    np.testing.assert_allclose(estimator.log_prob(s[:10], x=x_o, progress=False), logq[:10], atol=0.02)
    both, both_logq = estimator.sample(50, x=np.stack([x_o, -x_o]), log_prob=True, progress=False)
    assert both.shape == (2, 50, 2) and both_logq.shape == (2, 50)
    assert np.all(np.isfinite(both_logq))


def test_iid_observations(estimator):
    rng = np.random.default_rng(5)
    truth = np.array([0.3, -0.2])
    xs = truth + 0.5 * rng.normal(size=(5, 2))
    s = estimator.sample(3000, x=xs, iid=True, progress=False)
    assert s.shape == (3000, 2)
    np.testing.assert_allclose(s.mean(0), 4 * xs.sum(0) / 21, atol=0.08)
    np.testing.assert_allclose(s.std(0), np.sqrt(1 / 21), rtol=0.3)


def test_calibration_on_held_out_simulations(estimator):
    rng = np.random.default_rng(7)
    theta = rng.normal(size=(200, 2))
    x = theta + 0.5 * rng.normal(size=theta.shape)
    report = estimator.diagnose(theta, x, samples=200, hpd_samples=20, progress=False)
    assert set(report["checks"]) == {"sbc theta_0", "sbc theta_1", "hpd", "tarp"}
    assert report["ranks"].shape == (200, 2) and report["ranks"].dtype == np.int64
    assert report["ranks"].min() >= 0 and report["ranks"].max() <= 200
    assert report["simulations"] == 200 and report["samples"] == 200 and report["sampler"] == "dpmpp2m"
    assert np.all(np.diff(report["levels"]) > 0)
    for name, check in report["checks"].items():
        assert check["coverage"].shape == report["levels"].shape
        assert abs(check["mean_coverage_gap"]) < 0.1, name
    # Parameters that did not make the observations are told apart: shifted by one prior sd,
    # theta_0 falls above its posterior samples far too often.
    wrong = estimator.diagnose(theta + [1.0, 0.0], x, samples=200, hpd_samples=0, progress=False)
    assert "hpd" not in wrong["checks"]
    assert wrong["checks"]["sbc theta_0"]["p_value"] < 1e-3
    assert wrong["checks"]["sbc theta_0"]["verdict"] != "calibrated"
    with pytest.raises(ValueError, match="rows"):
        estimator.diagnose(theta, x[:10], progress=False)


def test_load_the_run_again(estimator):
    again = sbgm.PosteriorEstimator.load(estimator.out)
    x_o = np.array([0.5, -1.0])
    np.testing.assert_array_equal(again.sample(50, x=x_o, seed=3, progress=False),
                                  estimator.sample(50, x=x_o, seed=3, progress=False))
    assert again.model.config["sde.type"] == "ve"  # the posterior default, settled and recorded


def test_bounded_prior_keeps_samples_inside(tmp_path):
    rng = np.random.default_rng(1)
    theta = rng.uniform(-1, 1, size=(2000, 1))
    x = theta + 0.3 * rng.normal(size=theta.shape)
    est = sbgm.PosteriorEstimator(tmp_path / "b", lower=-1, upper=1, config={"train.steps": 1000, **SMALL})
    est.fit(theta, x, progress=False)
    s = est.sample(2000, x=[0.95], progress=False)
    assert s.min() > -1 and s.max() < 1
    assert est.model.config["data.lower"] == [-1.0] or est.model.config["data.lower"] == -1.0


def test_a_uniform_priors_box_is_found_by_default(tmp_path, capsys):
    """data.bounds = auto: the box the parameters show is the model's, recorded in its config,
    and samples outside it are drawn again — said under the progress bar, and a warning where the
    model puts its mass outside the box for a condition."""
    rng = np.random.default_rng(1)
    theta = rng.uniform(-1, 1, size=(2000, 1))
    x = theta + 0.3 * rng.normal(size=theta.shape)
    est = sbgm.PosteriorEstimator(tmp_path / "found", config={"train.steps": 300, **SMALL})
    est.fit(theta, x, progress=False)
    assert est.model.config["data.bounds"] == "find"
    assert est.model.config["data.keep_within"] == "reject"
    lower, upper = (np.ravel(est.model.config[k])[0] for k in ("data.lower", "data.upper"))
    assert -1.01 < lower < theta.min() and theta.max() < upper < 1.01
    s = est.sample(1000, x=[0.95], progress=False)
    assert s.min() >= lower and s.max() <= upper
    capsys.readouterr()
    est.sample(1000, x=[0.95])  # near the edge: the posterior's mass beyond it is drawn again
    assert "first draws fell outside data.lower .. data.upper and were drawn again" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="moved onto the box"):  # far beyond anything trained on
        far = est.sample(100, x=[40.0], progress=False)
    assert far.min() >= lower and far.max() <= upper
    # Their log-densities: normalised by the share of draws inside (its error in the standard
    # error), NaN for the samples moved onto the box, which the model never drew.
    _, logq, std = est.sample(1000, x=[0.95], log_prob=True, return_std=True, progress=False)
    assert np.all(np.isfinite(logq)) and np.all(std > 0)
    with pytest.warns(UserWarning, match="moved onto the box"):
        _, lost = est.sample(100, x=[40.0], log_prob=True, progress=False)
    assert np.all(np.isnan(lost))
    # More draws for that share shrink its error, shared by the rows of a condition, as 1 / sqrt(m).
    rows = s[:3]
    _, few = est.model.log_prob(rows, [0.95], return_std=True, support_draws=100, progress=False)
    _, many = est.model.log_prob(rows, [0.95], return_std=True, support_draws=10000, progress=False)
    assert np.allclose(few, few[0]) and 6 < few[0] / many[0] < 16
    _, _, std_own = est.sample(20, x=[0.95], log_prob=True, return_std=True, support_draws=4000, progress=False)
    assert 1.6 < np.mean(std) / std_own[0] < 2.5  # Z from the request's 1,000 draws, then from 4,000 of its own (2)
    for bad in (0, 10 ** 8):
        with pytest.raises(ValueError, match=r"support_draws must be in \[1, 10000000\]"):
            est.model.log_prob(rows, [0.95], support_draws=bad, progress=False)


def test_a_temporary_directory_by_default():
    rng = np.random.default_rng(2)
    theta = rng.normal(size=(300, 1))
    est = sbgm.PosteriorEstimator(config={"train.steps": 100, "model.width": 16}).fit(theta, theta, progress=False)
    assert "sbgm-posterior-" in est.out
    assert est.sample(10, x=[0.0], progress=False).shape == (10, 1)
    assert "PosteriorEstimator(sbgm.Model(trained" in repr(est)


def test_flow_matching_posterior(tmp_path):
    """objective="flow" (FMPE): the same analytic posterior, sampled and evaluated by the ODE;
    an iid posterior, which composes scores, is refused."""
    rng = np.random.default_rng(1)
    theta = rng.normal(size=(4000, 2))
    x = theta + 0.5 * rng.normal(size=theta.shape)
    est = sbgm.PosteriorEstimator(tmp_path / "flow", objective="flow", config={"train.steps": 3000, **SMALL})
    est.fit(theta, x, progress=False)
    assert est.model.config["model.objective"] == "flow"
    assert est.model.config["sde.type"] == "linear"
    x_o = np.array([0.5, -1.0])
    s = est.sample(4000, x=x_o, progress=False)
    np.testing.assert_allclose(s.mean(0), 0.8 * x_o, atol=0.08)
    np.testing.assert_allclose(s.std(0), np.sqrt(0.2), rtol=0.15)
    t = np.array([[0.4, -0.8], [0.0, 0.0]])
    d = t - 0.8 * x_o
    exact = -np.log(2 * np.pi * 0.2) - (d ** 2).sum(1) / (2 * 0.2)
    np.testing.assert_allclose(est.log_prob(t, x=x_o, progress=False), exact, atol=0.25)
    with pytest.raises(ValueError, match="flow"):
        est.sample(10, x=np.stack([x_o, x_o]), iid=True, progress=False)
    with pytest.raises(ValueError, match="ode sampler"):
        est.sample(10, x=x_o, sampler="em", progress=False)


def test_log_normal_conditions_are_taken_as_logs(tmp_path):
    """Positive, heavy-tailed x (x = exp(2 theta + 0.5 z)) reach the network as log x, chosen by
    the run itself; the posterior is then the analytic N(8 log x / 17, 1/17); a condition that is
    not positive is a ValueError naming it."""
    rng = np.random.default_rng(4)
    theta = rng.normal(size=(4000, 1))
    x = np.exp(2 * theta + 0.5 * rng.normal(size=theta.shape))
    est = sbgm.PosteriorEstimator(tmp_path / "log", config={"train.steps": 3000, "model.baseline": "none", **SMALL})
    est.fit(theta, x, progress=False)
    assert est.model.config["data.cond_transform"] == "log"
    s = est.sample(4000, x=[np.exp(1.0)], progress=False)
    np.testing.assert_allclose(s.mean(), 8 / 17, atol=0.08)
    np.testing.assert_allclose(s.std(), np.sqrt(1 / 17), rtol=0.15)
    with pytest.raises(ValueError, match="is not positive"):
        est.sample(10, x=[-1.0], progress=False)


def test_log_normal_parameters_are_modelled_as_logs(tmp_path):
    """theta drawn from a log-normal prior (log theta ~ N(0, 0.5^2)) with x = log theta + 0.5 z: the
    run models log theta by itself, every sample is positive, and the posterior of log theta is the
    analytic N(x / 2, 1/8); log_prob includes the log's Jacobian. Parameters that are not positive
    are a ValueError when the log is asked for."""
    rng = np.random.default_rng(6)
    log_theta = 0.5 * rng.normal(size=(4000, 1))
    x = log_theta + 0.5 * rng.normal(size=log_theta.shape)
    est = sbgm.PosteriorEstimator(tmp_path / "logtheta", config={"train.steps": 3000, "model.baseline": "none", **SMALL})
    est.fit(np.exp(log_theta), x, progress=False)
    assert est.model.config["data.transform"] == "log"
    s = est.sample(4000, x=[0.6], progress=False)
    assert (s > 0).all()
    np.testing.assert_allclose(np.log(s).mean(), 0.3, atol=0.06)
    np.testing.assert_allclose(np.log(s).std(), np.sqrt(1 / 8), rtol=0.15)
    t = np.array([[np.exp(0.3)], [np.exp(-0.1)]])
    u = np.log(t[:, 0])
    exact = -0.5 * np.log(2 * np.pi / 8) - (u - 0.3) ** 2 * 4 - u
    np.testing.assert_allclose(est.log_prob(t, x=[0.6], progress=False), exact, atol=0.2)
    signed = sbgm.PosteriorEstimator(tmp_path / "signed", config={"train.steps": 10, "data.transform": "log", **SMALL})
    with pytest.raises(ValueError, match="is not positive"):
        signed.fit(log_theta, x, progress=False)
    boxed = sbgm.PosteriorEstimator(tmp_path / "boxed", upper=100.0,
                                    config={"train.steps": 10, "data.transform": "log", **SMALL})
    with pytest.raises(ValueError, match="is the map of a lower bound 0"):
        boxed.fit(np.exp(log_theta), x, progress=False)


def test_the_candidates_name_the_networks(tmp_path):
    """model.candidates: the transformer trained beside the MLP and the one with the lower held-out
    loss kept, its config recording the list; a name that is no candidate is a ValueError."""
    rng = np.random.default_rng(3)
    theta = rng.normal(size=(1000, 2))
    x = theta + 0.5 * rng.normal(size=theta.shape)
    config = {"train.steps": 300, "model.width": 16, "model.depth": 1, "model.candidates": "none,transformer"}
    est = sbgm.PosteriorEstimator(tmp_path / "listed", config=config).fit(theta, x, progress=False)
    rows = (tmp_path / "listed" / "candidates.csv").read_text().splitlines()
    assert rows[0] == "candidate,model.type,best_held_out_loss,best_step,steps,chosen"
    assert [r.split(",")[:2] for r in rows[1:]] == [["none", "mlp"], ["transformer", "transformer"]]
    assert est.model.config["model.candidates"] == "none,transformer"
    kept = [r.split(",")[1] for r in rows[1:] if r.endswith(",1")]
    assert est.model.config["model.type"] == kept[0]
    with pytest.raises(ValueError, match="model.candidates"):
        sbgm.PosteriorEstimator(tmp_path / "bad", config={"model.candidates": "none,mlp"}).fit(theta, x, progress=False)
    assert not (tmp_path / "bad").exists()
