"""Accuracy of the NumPy engine on CIFAR-10 (49,000 train / 1,000 validation from the training set,
the 10,000 test images for the final number), trained by the assignment's Solver, with wall times.

    python benchmarks/bench_scratch_cifar.py fc       # best FullyConnectedNet: >= 55% validation
    python benchmarks/bench_scratch_cifar.py cnn      # ThreeLayerConvNet, 1 epoch: > 40% training acc
    python benchmarks/bench_scratch_cifar.py resnet   # NumPy mini-ResNet: >= 70% test accuracy

Data: found like all of cnnarch.data ($CNNARCH_DATA, the cache, a download; JPEG copies decoded once).
Run with OMP_NUM_THREADS set; every run is seeded and repeats exactly on the same machine.
"""

import argparse
import os
import time

import numpy as np

from cnnarch.scratch.classifiers.cnn import ThreeLayerConvNet
from cnnarch.scratch.classifiers.fc_net import FullyConnectedNet
from cnnarch.scratch.data import get_CIFAR10_data
from cnnarch.scratch.modules import mini_resnet
from cnnarch.scratch.solver import Solver

# run name -> (model builder, Solver keyword arguments)
RECIPES = {
    "fc": (
        lambda: FullyConnectedNet(
            [512, 256], normalization="batchnorm", dropout_keep_ratio=0.9, reg=5e-4, weight_scale=1e-2
        ),
        dict(
            update_rule="adam",
            optim_config={"learning_rate": 1e-3},
            lr_decay=0.9,
            num_epochs=15,
            batch_size=200,
        ),
    ),
    "cnn": (
        lambda: ThreeLayerConvNet(weight_scale=1e-3, hidden_dim=500, reg=1e-3),
        dict(
            update_rule="adam",
            optim_config={"learning_rate": 1e-3},
            num_epochs=1,
            batch_size=50,
            print_every=50,
        ),
    ),
    "resnet": (
        lambda: mini_resnet(widths=(32, 64, 128), reg=5e-4),
        dict(
            update_rule="adam",
            optim_config={"learning_rate": 3e-3},
            lr_decay=0.5,
            num_epochs=4,
            batch_size=128,
        ),
    ),
}


def accuracy(model, X, y, batch_size=500):
    pred = np.concatenate(
        [model.loss(X[i : i + batch_size]).argmax(axis=1) for i in range(0, len(X), batch_size)]
    )
    return float((pred == y).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", choices=["fc", "cnn", "resnet"])
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}",
        flush=True,
    )

    t0 = time.perf_counter()
    data = get_CIFAR10_data(num_test=10000)
    if args.run != "fc":  # per-channel scaling for the conv nets (the mean is already subtracted)
        std = data["X_train"].std(axis=(0, 2, 3), keepdims=True)
        for k in ("X_train", "X_val", "X_test"):
            data[k] /= std
    print(
        f"data: {len(data['X_train'])} train, {len(data['X_val'])} val, {len(data['X_test'])} test, "
        f"{time.perf_counter() - t0:.0f} s",
        flush=True,
    )

    np.random.seed(args.seed)
    build, kw = RECIPES[args.run]
    model = build()
    kw = {**kw, "optim_config": {"learning_rate": args.lr or kw["optim_config"]["learning_rate"]}}
    if args.epochs:
        kw["num_epochs"] = args.epochs
    print(
        f"model: {type(model).__name__}, {sum(v.size for v in model.params.values())} parameters; {kw}",
        flush=True,
    )

    t1 = time.perf_counter()
    solver = Solver(model, data, **kw)
    solver.train()
    train_time = time.perf_counter() - t1
    train_acc = accuracy(model, data["X_train"][:5000], data["y_train"][:5000])
    val_acc = accuracy(model, data["X_val"], data["y_val"])
    test_acc = accuracy(model, data["X_test"], data["y_test"])
    print(
        f"RESULT {args.run}: best val {solver.best_val_acc:.4f}, val {val_acc:.4f}, test {test_acc:.4f}, "
        f"train (5000 imgs) {train_acc:.4f}, train acc history {solver.train_acc_history}, "
        f"val history {solver.val_acc_history}; training wall time {train_time:.0f} s, "
        f"total {time.perf_counter() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
