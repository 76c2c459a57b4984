"""The Python examples run end to end (at small sizes) and reach sensible quality."""
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
    out = run("two_moons_sbi.py", "--simulations", "3000", "--steps", "4000", "--out", str(tmp_path))
    c2st = float(out.split("C2ST ")[1].split()[0])
    assert c2st < 0.75, out  # a short run: the posterior's two crescents are found, not yet sharp
    assert (tmp_path / "posterior.png").exists() and (tmp_path / "posterior.npy").exists()


def test_density(tmp_path):
    out = run("density.py", "--steps", "3000", "--rows", "5000", "--grid", "20", "--out", str(tmp_path))
    fit = float(out.split("data rows ")[1].split()[0])
    truth = float(out.split("(exact ")[1].split(")")[0])
    assert abs(fit - truth) < 0.3, out
    assert (tmp_path / "density.png").exists()
