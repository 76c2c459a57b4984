"""Experiment (docs/sbi.md, "Preconditioning the pairs outside sbgm"): transform the training
pairs before sbgm's defaults see them, sample, map the draws back and score them against sbibm's
reference posteriors. Two transforms, each asking whether the network's use of the pairs (the
error that is fixed by them) improves when part of the work is done for it:

- residual: model z = (θ' - μ(x)) / s instead of θ' (θ' = log θ for positive parameters), with
  μ(x) an MLP regressing θ' on x by least squares (scikit-learn, early-stopped) and s the
  residuals' standard deviation per parameter, or with --local a second regression of their
  log-square on x. With --folds K > 1 each training pair's μ comes from the fold model that did
  not see it and μ(x_o) is the mean of the K models. Where the posterior is much narrower than the
  prior (lotka_volterra: 4-12 % of its width) the score network then works at the posterior's scale.
- whiten: give the network x' = W (log x - mean) with W the PCA whitening of the training
  conditions (log x where x is positive), so that an MLP sees decorrelated features of unit variance.

    python3 preconditioning.py residual|whiten RUN_DIR [--folds K] [--local] [--fast-c2st] [-- TRAIN-ARGS]

RUN_DIR is a folder examples/sbi/run.sh wrote (theta.npy, x.npy, observations.npy,
reference.npy); the experiment writes RUN_DIR/<transform>[...]/ and prints the C2ST per
observation and their mean as JSON. Uses the sbgm command (SBGM or --sbgm); sbgm itself does not
use this file.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.neural_network import MLPRegressor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import sbibm  # noqa: E402

E_LOG_CHI2_1 = -1.2704  # E[log r^2] for r ~ N(0, 1)


def regressor(seed):
    return MLPRegressor(hidden_layer_sizes=(256, 256), batch_size=256, learning_rate_init=1e-3,
                        max_iter=1000, early_stopping=True, validation_fraction=0.1,
                        n_iter_no_change=30, random_state=seed)


def regress(features, targets, new_features, folds, seed):
    """Predictions of targets for the training rows and for new_features. folds = 1: one model of
    every row, so that the transform is one fixed function of (θ, x); folds > 1: each training
    row from the fold model that did not see it, new_features by the mean of the fold models."""
    width = targets.shape[1]
    if folds == 1:
        model = regressor(seed).fit(features, targets)
        return model.predict(features).reshape(-1, width), model.predict(new_features).reshape(-1, width)
    rows = np.random.default_rng(seed).permutation(len(features)) % folds
    fitted, new = np.empty_like(targets), np.zeros((len(new_features), width))
    for k in range(folds):
        model = regressor(seed + k).fit(features[rows != k], targets[rows != k])
        fitted[rows == k] = model.predict(features[rows == k]).reshape(-1, width)
        new += model.predict(new_features).reshape(-1, width) / folds
    return fitted, new


def log_if_positive(train, new):
    """The log of both when every training value is positive (sir's and lotka_volterra's x and θ,
    whose logs sbgm's defaults take too), else both as they are."""
    return (np.log(train), np.log(new)) if (train > 0).all() else (train, new)


def standardized(train, new):
    mean, sd = train.mean(0), train.std(0) + 1e-12
    return (train - mean) / sd, (new - mean) / sd


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("transform", choices=["residual", "whiten"])
    ap.add_argument("run_dir")
    ap.add_argument("--folds", type=int, default=1, help="residual: cross-fitted μ over K folds")
    ap.add_argument("--local", action="store_true", help="residual: s(x) from a regression of the log-squared residuals")
    ap.add_argument("--fast-c2st", action="store_true")
    ap.add_argument("--sbgm", default=os.environ.get("SBGM", "sbgm"))
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    a, train_args = ap.parse_args(argv[:cut]), argv[cut + 1:]   # after --: more sbgm train arguments
    run = Path(a.run_dir)
    theta, x = np.load(run / "theta.npy").astype(np.float64), np.load(run / "x.npy").astype(np.float64)
    obs = np.load(run / "observations.npy").astype(np.float64)
    obs = obs.reshape(len(obs), -1)
    ref = np.load(run / "reference.npy")
    logs, logs_o = log_if_positive(x, obs)
    feats, feats_o = standardized(logs, logs_o)

    t0 = time.time()
    if a.transform == "whiten":
        out = run / "whiten"
        values, vectors = np.linalg.eigh(np.cov(logs, rowvar=False))
        w = vectors / np.sqrt(np.maximum(values, 1e-12 * values.max()))
        centre = logs.mean(0)
        data, cond, cond_o = run / "theta.npy", (logs - centre) @ w, (logs_o - centre) @ w
    else:
        out = run / f"residual{'_local' if a.local else ''}_f{a.folds}"
        log_theta = bool((theta > 0).all())
        t = np.log(theta) if log_theta else theta
        t_mean, t_sd = t.mean(0), t.std(0)
        tn = (t - t_mean) / t_sd
        mu, mu_o = regress(feats, tn, feats_o, a.folds, 0)
        resid = tn - mu
        if a.local:   # E[log r^2 | x] = log s(x)^2 + E[log chi^2_1]
            ls, ls_o = regress(feats, np.log(resid ** 2 + 1e-12), feats_o, a.folds, 100)
            s, s_o = np.exp(0.5 * (ls - E_LOG_CHI2_1)), np.exp(0.5 * (ls_o - E_LOG_CHI2_1))
        else:
            s, s_o = resid.std(0), resid.std(0)
        print(f"residual sd per parameter {resid.std(0).round(3).tolist()} (in prior sd)", flush=True)
        out.mkdir(exist_ok=True)
        np.save(out / "z.npy", (resid / s).astype(np.float32))
        data, cond, cond_o = out / "z.npy", x, obs
    prepare_s = time.time() - t0
    out.mkdir(exist_ok=True)
    np.save(out / "x.npy", cond.astype(np.float32))
    np.save(out / "observations.npy", cond_o[:, None, :].astype(np.float32))

    model = out / "run"
    t0 = time.time()
    subprocess.run([a.sbgm, "train", "--data", data, "--cond", out / "x.npy", "--out", model, *train_args],
                   check=True)
    train_s = time.time() - t0
    t0 = time.time()
    subprocess.run([a.sbgm, "sample", "--checkpoint", model, "--cond", out / "observations.npy",
                    "--n", "10000", "--out", out / "draws.npy"], check=True)
    sample_s = time.time() - t0
    post = np.load(out / "draws.npy").astype(np.float64)             # [K, n, D]
    if a.transform == "residual":
        post = (mu_o[:, None, :] + s_o[..., None, :] * post) * t_sd + t_mean
        if log_theta:
            post = np.exp(post)
    np.save(out / "posterior.npy", post.astype(np.float32))
    acc = [sbibm.c2st(ref[i], post[i], fast=a.fast_c2st) for i in range(len(obs))]
    print(json.dumps({"transform": a.transform, "folds": a.folds, "local": a.local, "c2st": acc,
                      "c2st_mean": float(np.mean(acc)), "c2st_mode": sbibm.c2st_mode(a.fast_c2st),
                      "prepare_seconds": round(prepare_s), "train_seconds": round(train_s),
                      "sample_seconds": round(sample_s)}))


if __name__ == "__main__":
    main()
