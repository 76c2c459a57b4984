"""The Python examples run end to end (at small sizes: a 3 x 128 network, short runs) and reach
sensible quality."""
import os
import subprocess
import sys

SOURCE = os.environ.get("SBGM_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


def run(script, *args):
    done = subprocess.run([sys.executable, os.path.join(SOURCE, "examples", "python", script), *args],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_two_moons_sbi(tmp_path):
    out = run("two_moons_sbi.py", "--simulations", "3000", "--steps", "10000", "--width", "128", "--depth", "3",
              "--out", str(tmp_path))
    c2st = float(out.split("C2ST ")[1].split()[0])
    assert c2st < 0.65, out  # a short run of a small network: the two crescents found (0.53 when written)
    assert (tmp_path / "posterior.png").exists() and (tmp_path / "posterior.npy").exists()


def test_density(tmp_path):
    out = run("density.py", "--steps", "3000", "--width", "128", "--depth", "3", "--rows", "5000", "--grid", "20",
              "--samples", "1000", "--out", str(tmp_path))
    fit = float(out.split("data rows ")[1].split()[0])
    truth = float(out.split("(exact ")[1].split(")")[0])
    assert abs(fit - truth) < 0.3, out
    assert (tmp_path / "density.png").exists()
