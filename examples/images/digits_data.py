"""The 8x8 digits that Debian's python3-sklearn ships (1,797 images, grey levels 0-16) as the
image examples use them: OUT/digits_train.npy (the first 1,500, [N, 8, 8] uint8) and
OUT/digits_test.npy (the last 297, held out for bits/dim).

Usage: digits_data.py OUT_DIR
"""
import sys

import numpy as np

CSV = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"


def main(out):
    try:
        rows = np.loadtxt(CSV, delimiter=",")
    except OSError:
        sys.exit("digits_data.py: %s not found (apt install python3-sklearn)" % CSV)
    # Each row is 64 pixel levels and a label.
    images = rows[:, :64].reshape(-1, 8, 8).astype(np.uint8)
    np.save(out + "/digits_train.npy", images[:1500])
    np.save(out + "/digits_test.npy", images[1500:])


if __name__ == "__main__":
    main(sys.argv[1])
