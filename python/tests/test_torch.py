"""torch tensors in, torch tensors out: the same results as NumPy arrays give, inputs used in
place and never written to, and results that share their memory with the library's tensors."""
import gc

import numpy as np
import pytest

import sbgm

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def posterior(tmp_path_factory):
    """A small p(theta | x) for theta ~ N(0, I), x = theta + 0.5 noise (its quality is not the point)."""
    rng = np.random.default_rng(3)
    theta = rng.normal(size=(500, 2))
    x = theta + 0.5 * rng.normal(size=(500, 2))
    out = tmp_path_factory.mktemp("torch") / "run"
    return sbgm.PosteriorEstimator(out, config={"train.steps": 200, "model.baseline": "none"}).fit(
        torch.from_numpy(theta), torch.from_numpy(x), progress=False)


def test_tensors_give_tensors_equal_to_what_arrays_give(posterior):
    xo = np.array([0.3, -0.2])
    for dtype in (torch.float32, torch.float64):
        t_xo = torch.tensor(xo, dtype=dtype)
        a = posterior.sample(40, xo, seed=1, progress=False)
        b = posterior.sample(40, t_xo, seed=1, progress=False)
        assert isinstance(a, np.ndarray) and isinstance(b, torch.Tensor)
        np.testing.assert_allclose(b.numpy(), a, rtol=1e-5, atol=1e-5)
        theta = a[:8].astype(np.float64)
        lp, std = posterior.log_prob(torch.tensor(theta, dtype=dtype), t_xo, progress=False, return_std=True)
        assert isinstance(lp, torch.Tensor) and isinstance(std, torch.Tensor)
        # float64 rows are the arrays' own values; float32 ones differ by a rounding, which the
        # adaptive solve may turn into other steps (its tolerance, not the conversion, bounds that).
        np.testing.assert_allclose(lp.numpy(), posterior.log_prob(theta, xo, progress=False),
                                   atol=1e-12 if dtype == torch.float64 else 1e-2)
        mode = posterior.map(t_xo, starts=10, progress=False)
        assert isinstance(mode, torch.Tensor) and tuple(mode.shape) == (2,)
        np.testing.assert_allclose(mode.numpy(), posterior.map(xo, starts=10, progress=False), rtol=1e-5, atol=1e-5)
        iid = posterior.sample(20, torch.tensor(np.stack([xo, xo]), dtype=dtype), iid=True, draws=50, progress=False)
        assert isinstance(iid, torch.Tensor) and tuple(iid.shape) == (20, 2)


def test_inputs_are_never_written_to(posterior, tmp_path):
    # Arrays and tensors reach the library without a copy, so it must leave them as they were.
    rng = np.random.default_rng(4)
    theta = torch.from_numpy(rng.normal(size=(300, 2)))
    x = theta + 0.5 * torch.from_numpy(rng.normal(size=(300, 2)))
    kept = (theta.clone(), x.clone())
    sbgm.PosteriorEstimator(tmp_path / "run", config={"train.steps": 20}).fit(theta, x, progress=False)
    xo = torch.tensor([[0.1, 0.2], [0.4, -0.3]], dtype=torch.float32)
    rows = torch.tensor([[0.0, 0.1], [0.5, -0.5]])
    before = (xo.clone(), rows.clone())
    posterior.sample(10, xo, progress=False)
    posterior.log_prob(rows, xo, progress=False)
    posterior.log_prob(rows, xo, bound="elbo-dsm", draws=4, progress=False)
    posterior.map(xo, starts=5, progress=False)
    posterior.diagnose(rows, xo, samples=10, hpd_samples=0, progress=False)
    mixture = sbgm.gaussian_mixture(torch.tensor([1.0]), torch.tensor([[1.0, -1.0]]),
                                    torch.tensor([[[1.0, 0.5], [0.5, 1.0]]]))
    observed = torch.tensor([[2.0, float("nan")]], dtype=torch.float64)
    mask = torch.tensor([1.0, 0.0])
    kept_observed = observed.clone()
    out = mixture.inpaint(observed, mask, n=5, steps=20, progress=False)
    assert isinstance(out, torch.Tensor) and tuple(out.shape) == (1, 5, 2)
    assert torch.equal(theta, kept[0]) and torch.equal(x, kept[1])
    assert torch.equal(xo, before[0]) and torch.equal(rows, before[1])
    assert torch.equal(mask, torch.tensor([1.0, 0.0]))
    assert torch.equal(observed.isnan(), kept_observed.isnan())
    assert torch.equal(observed.nan_to_num(), kept_observed.nan_to_num())


def test_tensors_of_other_layouts_and_types_are_converted(posterior):
    xo = torch.tensor([0.3, -0.2], dtype=torch.float64)
    reference = posterior.log_prob(torch.tensor([[0.1, 0.2], [0.3, 0.4]]), xo, progress=False)
    # Non-contiguous, requiring gradients, bfloat16 and integer tensors are copied into float64.
    strided = torch.tensor([[0.1, 0.3], [0.2, 0.4]]).T
    assert not strided.is_contiguous()
    np.testing.assert_allclose(posterior.log_prob(strided, xo, progress=False).numpy(), reference.numpy(), atol=1e-5)
    grad = torch.tensor([[0.1, 0.2], [0.3, 0.4]], requires_grad=True)
    np.testing.assert_allclose(posterior.log_prob(grad, xo, progress=False).numpy(), reference.numpy(), atol=1e-5)
    assert isinstance(posterior.log_prob(torch.tensor([[0, 1]], dtype=torch.int32), xo, progress=False), torch.Tensor)
    assert isinstance(posterior.log_prob(torch.tensor([[0.5, 1.0]], dtype=torch.bfloat16), xo, progress=False),
                      torch.Tensor)
    with pytest.raises(TypeError, match="theta"):
        posterior.log_prob(torch.tensor([[True, False]]), xo, progress=False)
    with pytest.raises(TypeError, match="complex"):
        posterior.log_prob(torch.tensor([[1 + 1j, 0j]]), xo, progress=False)
    with pytest.raises(ValueError, match="0 rows"):
        posterior.log_prob(torch.zeros((0, 2)), xo, progress=False)


def test_results_share_the_library_tensors_memory_and_outlive_the_model():
    mixture = sbgm.gaussian_mixture([1.0], [[1.0, -1.0]], [[[1.0, 0.0], [0.0, 1.0]]])
    out = mixture.sample(1000, seed=0, steps=50, progress=False)
    assert not out.flags.owndata and out.base is not None  # the library's tensor, not a copy of it
    kept = out.copy()
    del mixture
    gc.collect()
    assert np.array_equal(out, kept)
    out += 1.0  # the caller owns it: writable
    shared = torch.from_numpy(out)
    assert shared.data_ptr() == out.__array_interface__["data"][0]
