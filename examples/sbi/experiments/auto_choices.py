"""Check (docs/sbi.md, "Sets found in the pairs" and "Log-normal parameters"): what the defaults
choose from each sbibm task's pairs by themselves — whether the conditions are read as a set
(data.cond_set = auto, include/sbgm/data/exchangeable_elements.hpp), whether θ and x are taken as
their logs (data.transform, data.cond_transform; include/sbgm/data/feature_transform.hpp) and
whether a box is found in θ (data.bounds; include/sbgm/data/bounds.hpp). For each task and budget
it simulates the pairs from the prior predictive (seed 0, as examples/sbi/run.sh does), starts
`sbgm train` on them with the defaults for one step and reads what the run settled in its
config.toml, and the set test's p-value from what it said. Uses the sbgm command only; sbgm itself
does not use this file.

    python3 auto_choices.py [--tasks T,T,...] [--budgets 1000,10000,100000] [--out DIR]

Prints a line per task and budget: the set's width (0: none) with its p-value, the two transforms,
and the sides of θ's features found bounded.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import sbibm  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", default=",".join(t for t in sbibm.TASKS if t != "bernoulli_glm_raw"))
    ap.add_argument("--budgets", default="1000,10000,100000")
    ap.add_argument("--out", default=None, help="folder for the pairs and runs (default: a temporary one)")
    a = ap.parse_args()
    sbgm = os.environ.get("SBGM", sbibm._sbgm_default())
    root = Path(a.out or tempfile.mkdtemp(prefix="auto_choices_"))
    for task in a.tasks.split(","):
        for budget in (int(b) for b in a.budgets.split(",")):
            cell = root / f"{task}_{budget}"
            cell.mkdir(parents=True, exist_ok=True)
            theta, x = sbibm.simulate(task, budget, seed=0)
            np.save(cell / "theta.npy", theta)
            np.save(cell / "x.npy", x)
            said = subprocess.run([sbgm, "train", "--data", str(cell / "theta.npy"), "--cond", str(cell / "x.npy"),
                                   "--steps", "1", "--sample.n", "10", "--model.baseline", "none",
                                   "--out", str(cell / "run")], capture_output=True, text=True)
            if said.returncode != 0:
                sys.exit(f"{task} {budget}: sbgm train failed: {said.stderr.strip()}")
            config = (cell / "run" / "config.toml").read_text()
            width = int(re.search(r"^cond_set = (\d+)", config, re.M).group(1))
            p = re.search(r"data\.cond_set: .* p = ([^)]+)\)", said.stdout + said.stderr)
            transform = re.search(r'^transform = "(\w+)"', config, re.M).group(1)
            cond_transform = re.search(r'^cond_transform = "(\w+)"', config, re.M).group(1)
            sides = sum(1 for m in re.finditer(r"^(?:lower|upper) = \[([^\]]*)\]", config, re.M)
                        for v in m.group(1).split(",") if v.strip() and "inf" not in v)
            print(f"{task} {budget}: set width {width}" + (f" (p = {p.group(1)})" if p else "") +
                  f", data.transform {transform}, data.cond_transform {cond_transform}, bounded sides {sides}",
                  flush=True)


if __name__ == "__main__":
    main()
