"""``cnnarch eval CHECKPOINT... [--ten-crop]``: top-1/top-5 of each checkpoint and of their ensemble;
``cnnarch eval NAME --weights W``: of a network of the zoo with any weights (a name, a file, a URL).

The ensemble averages the members' softmax outputs, like AlexNet's ensemble of 7 CNNs. The test set is
the one the first checkpoint was trained with (``--data`` points elsewhere); each member normalises
images with its own training set's statistics. Weights given with a zoo name are evaluated on the test
split of ``--data`` (default CIFAR-10), preprocessed as their metadata says.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cnnarch.cli import add_format_argument
from cnnarch.cli._network import (
    add_precision_argument,
    add_weights_argument,
    chosen_precision,
    is_checkpoint,
    load_network,
)
from cnnarch.cli.cmd_train import add_config_options
from cnnarch.errors import UsageError
from cnnarch.tables import plural, render


def add_parser(sub):
    p = sub.add_parser("eval", help="accuracy of checkpoints and of their ensemble", description=__doc__)
    p.add_argument(
        "networks",
        nargs="+",
        metavar="NETWORK",
        help="checkpoints (best.pt, last.pt; several: their ensemble too), or one zoo name with --weights",
    )
    add_weights_argument(p, default="none: give it with a zoo name")
    p.add_argument("--ten-crop", action="store_true", help="average over 4 corners + centre and mirrors")
    p.add_argument("--split", choices=("test", "val"), default="test")
    # the flags train has for the same things, from the same configuration fields
    add_config_options(
        p,
        data={"help": "dataset name or directory (default: the first checkpoint's, else cifar10)"},
        limit_val={"help": "use only N images of the split"},
        skip_corrupt={"default": False},
        batch_size={"default": 250, "help": "images per forward pass (default 250)"},
        device={},
    )
    add_precision_argument(p)
    add_format_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from cnnarch.inference import weights_transform
    from cnnarch.models.weights import checkpoint_meta
    from cnnarch.train.config import TrainConfig
    from cnnarch.train.data import check_classes, load_split, load_splits, locate
    from cnnarch.train.evaluate import load_members, model_from_checkpoint

    if not is_checkpoint(args.networks[0]):
        return run_weights(args)
    if args.weights is not None:
        raise UsageError("--weights goes with a zoo name", hint="a checkpoint holds its own weights: drop it")
    members = load_members(args.networks)
    first = next(iter(members.values()))
    cfg = TrainConfig.from_dict(first["config"]).replace(resume=None)
    # --data, else the directory the run read (recorded in the checkpoint), else the rule for its dataset
    recorded = first["data_info"].get("root")
    if args.data is not None or (recorded and Path(recorded).is_dir()):
        cfg = cfg.replace(data=args.data or recorded)
    cfg = cfg.replace(limit_val=args.limit_val, skip_corrupt=args.skip_corrupt)  # checks --limit-val
    if args.split == "test":
        data = load_split(
            *locate(cfg.dataset.data),
            "test",
            args.limit_val,
            skip_corrupt=args.skip_corrupt,
            size=cfg.dataset.image_size,
        )
        if data is None:
            raise FileNotFoundError(f"{cfg.dataset.data} has no test/ split; use --split val")
    else:
        data = load_splits(cfg)[1]
        if data is None:
            raise ValueError("the first checkpoint's run had no validation split (--val-split 0)")
    check_classes(args.split, data.classes, first["classes"])
    if args.ten_crop and max(data.image_shape[1:]) <= 32:
        print(
            "--ten-crop: on 32x32 images the crops cut off a large part of each image and usually lower "
            "accuracy (by about 4 points on CIFAR-10); single crop is the better estimate",
            file=sys.stderr,
        )

    def networks():  # one at a time: an ensemble of large networks need not fit in memory at once
        for path, ckpt in members.items():
            padding = ckpt["data_info"].get("padding", 0) if args.ten_crop else None
            yield path, model_from_checkpoint(ckpt), weights_transform(checkpoint_meta(ckpt), padding)

    return score(args, data, networks(), "ten-crop" if args.ten_crop else "single crop")


def run_weights(args: argparse.Namespace) -> int:
    """``NAME --weights W`` on the test split of ``--data``."""
    from cnnarch.inference import weights_transform
    from cnnarch.train.data import load_split, locate

    if len(args.networks) > 1 or args.ten_crop or args.split != "test":
        raise UsageError(
            f"{args.networks[0]} --weights W evaluates one network of the zoo on the test split",
            hint="give no other networks, --ten-crop or --split val (checkpoints take those)",
        )
    net = load_network(args.networks[0], args.weights)
    meta = net.weights_meta
    data = load_split(*locate(args.data), "test", args.limit_val)
    if data is None:
        raise FileNotFoundError(f"{args.data} has no test/ split")
    named = list(meta.classes)
    if (named and named != data.classes) or (not named and meta.num_classes != len(data.classes)):
        raise ValueError(
            f"the weights' classes ({named or meta.num_classes}) differ from the test set's {data.classes}"
        )
    name = f"{args.networks[0]} ({args.weights})"
    return score(args, data, [(name, net, weights_transform(meta))], "single crop")


def score(args, data, networks, crops: str) -> int:
    """Each ``(name, network, transform)``'s probabilities on ``data``, and of their ensemble, printed."""
    from cnnarch.data import TensorLoader
    from cnnarch.train.device import pick_device
    from cnnarch.train.evaluate import evaluate_ensemble, predict_probs

    device = pick_device(args.device)
    precision = chosen_precision(args, device)
    batches = TensorLoader(data, args.batch_size, shuffle=False, device=device)
    probs, labels = {}, None
    for name, net, transform in networks:
        probs[name], labels = predict_probs(net, batches, transform, device, precision=precision)
    kind = "bf16" if precision.bf16 else "fp32"
    rows = [
        dict(checkpoint=r.name, split=args.split, crops=crops, precision=kind, images=r.images)
        | dict(top1=r.top1, top5=r.top5)
        for r in evaluate_ensemble(probs, labels)
    ]
    if args.format in ("table", "markdown"):
        print(f"{args.split} set: {plural(len(labels), 'image')}, {crops}")
        print(render(rows, args.format, columns=["checkpoint", "top1", "top5"]))
    else:
        print(render(rows, args.format))
    return 0
