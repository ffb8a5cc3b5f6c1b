"""``cnnarch eval CHECKPOINT... [--ten-crop]``: top-1/top-5 of each checkpoint and of their ensemble;
``cnnarch eval --model NAME --weights W``: of any weights (a name, a state_dict file, a URL).

The ensemble averages the members' softmax outputs, like AlexNet's ensemble of 7 CNNs. The test set is
the one the first checkpoint was trained with (``--data`` points elsewhere); each member normalises
images with its own training set's statistics. Weights given with ``--model`` are evaluated on the test
split of ``--data`` (default CIFAR-10), preprocessed as their metadata says.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnarch.cli._table import add_format_argument, render


def add_parser(sub):
    p = sub.add_parser("eval", help="accuracy of checkpoints and of their ensemble", description=__doc__)
    p.add_argument("checkpoints", nargs="*", metavar="CHECKPOINT")
    p.add_argument("--model", metavar="NAME", help="a network of the zoo, evaluated with --weights")
    p.add_argument(
        "--weights", metavar="W", help="with --model: a weight name (IMAGENET1K_V1, ...), file or URL"
    )
    p.add_argument("--ten-crop", action="store_true", help="average over 4 corners + centre and mirrors")
    p.add_argument("--data", help="dataset name or directory (default: the first checkpoint's)")
    p.add_argument("--split", choices=("test", "val"), default="test")
    p.add_argument("--limit-val", type=int, metavar="N", help="use only N images of the split")
    p.add_argument("--skip-corrupt", action="store_true", help="leave out images that cannot be decoded")
    p.add_argument("-b", "--batch-size", type=int, default=250)
    p.add_argument("--device", help="cpu, cuda (default: cuda when present)")
    add_format_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from cnnarch.data import TensorLoader
    from cnnarch.train.config import TrainConfig
    from cnnarch.train.data import (
        check_classes,
        eval_transform,
        load_split,
        load_splits,
        locate,
        normalize_for,
    )
    from cnnarch.train.device import pick_device
    from cnnarch.train.ensemble import load_members, model_from_checkpoint, predict_probs

    if args.model or args.weights:
        return run_weights(args)
    if not args.checkpoints:
        raise ValueError("give checkpoints, or --model NAME --weights W")
    members = load_members(args.checkpoints)
    first = next(iter(members.values()))
    cfg = TrainConfig.from_dict(first["config"]).replace(resume=None)
    # --data, else the directory the run read (recorded in the checkpoint), else the rule for its dataset
    recorded = first["data_info"].get("root")
    if args.data is not None or (recorded and Path(recorded).is_dir()):
        cfg = cfg.replace(data=args.data or recorded)
    cfg = cfg.replace(limit_val=args.limit_val, skip_corrupt=args.skip_corrupt)  # checks --limit-val
    if args.split == "test":
        data = load_split(
            *locate(cfg.data), "test", args.limit_val, skip_corrupt=args.skip_corrupt, size=cfg.image_size
        )
        if data is None:
            raise FileNotFoundError(f"{cfg.data} has no test/ split; use --split val")
    else:
        data = load_splits(cfg)[1]
        if data is None:
            raise ValueError("the first checkpoint's run had no validation split (--val-split 0)")
    check_classes(args.split, data.classes, first["classes"])
    device = pick_device(args.device)
    batches = TensorLoader(data, args.batch_size, shuffle=False, device=device)
    probs, labels = {}, None
    for path, ckpt in members.items():
        mcfg = TrainConfig.from_dict(ckpt["config"])
        info = ckpt["data_info"]
        tf = eval_transform(
            info,
            normalize_for(mcfg.replace(amp=False), info["mean"], info["std"], device),
            ten_crop=args.ten_crop,
        )
        probs[path], labels = predict_probs(model_from_checkpoint(ckpt), batches, tf, device)
    return report(args, probs, labels, "ten-crop" if args.ten_crop else "single crop")


def report(args, probs: dict, labels, crops: str) -> int:
    from cnnarch.train.ensemble import evaluate_ensemble

    rows = [
        dict(checkpoint=r.name, split=args.split, crops=crops, images=r.images, top1=r.top1, top5=r.top5)
        for r in evaluate_ensemble(probs, labels)
    ]
    if args.format in ("table", "markdown"):
        print(f"{args.split} set: {len(labels)} images, {crops}")
        print(render(rows, args.format, columns=["checkpoint", "top1", "top5"]))
    else:
        print(render(rows, args.format))
    return 0


def run_weights(args: argparse.Namespace) -> int:
    """``--model NAME --weights W`` on the test split of ``--data``."""
    from cnnarch.data import TensorLoader
    from cnnarch.inference import load_model, weights_transform
    from cnnarch.train.data import load_split, locate
    from cnnarch.train.device import pick_device
    from cnnarch.train.ensemble import predict_probs

    if args.checkpoints or not (args.model and args.weights) or args.ten_crop or args.split != "test":
        raise ValueError(
            "--model NAME --weights W evaluates one network on the test split: give both, and "
            "no checkpoints, --ten-crop or --split val"
        )
    net = load_model(model=args.model, weights=args.weights)
    meta = net.weights_meta
    data = load_split(*locate(args.data), "test", args.limit_val)
    if data is None:
        raise FileNotFoundError(f"{args.data} has no test/ split")
    named = list(meta.classes)
    if (named and named != data.classes) or (not named and meta.num_classes != len(data.classes)):
        raise ValueError(
            f"the weights' classes ({named or meta.num_classes}) differ from the test set's {data.classes}"
        )
    device = pick_device(args.device)
    batches = TensorLoader(data, args.batch_size, shuffle=False, device=device)
    probs, labels = predict_probs(net, batches, weights_transform(meta), device)
    return report(args, {f"{args.model} ({args.weights})": probs}, labels, "single crop")
