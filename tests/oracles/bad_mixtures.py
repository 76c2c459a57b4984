"""Writes malformed mixture archives for the CLI's bad-input tests: python3 bad_mixtures.py DIR"""
import sys
import numpy as np

out = sys.argv[1]
w, mu, cov = np.array([0.4, 0.6]), np.zeros((2, 2)), np.stack([np.eye(2)] * 2)
np.savez(f"{out}/good.npz", weights=w, means=mu, covs=cov)
np.savez(f"{out}/no_covs.npz", weights=w, means=mu)
np.savez(f"{out}/not_pd.npz", weights=w, means=mu, covs=np.stack([np.eye(2), -np.eye(2)]))
np.savez(f"{out}/disagree.npz", weights=np.array([0.2, 0.3, 0.5]), means=mu, covs=cov)
np.savez(f"{out}/negative_weight.npz", weights=np.array([-0.4, 1.4]), means=mu, covs=cov)
np.savez(f"{out}/text_weights.npz", weights=np.array(["1", "2"]), means=mu, covs=cov)
