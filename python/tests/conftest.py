import numpy as np
import pytest

# The build tree's package (ctest sets PYTHONPATH); run by hand: PYTHONPATH=build/python pytest python/tests
import sbgm  # noqa: E402

sbgm.set_threads(2)


@pytest.fixture(scope="session")
def gaussian_run(tmp_path_factory):
    """A small unconditional model of a correlated 2-D Gaussian, trained once for the session."""
    rng = np.random.default_rng(0)
    cov = np.array([[1.0, 0.6], [0.6, 0.5]])
    data = rng.multivariate_normal([1.0, -2.0], cov, size=4000)
    out = tmp_path_factory.mktemp("runs") / "gauss"
    model = sbgm.train(data, out=out, progress=False,
                       config={"train": {"steps": 2000, "batch_size": 256}, "model.width": 64, "model.depth": 3,
                               "sample.n": 200})
    return model, data, cov, out
