"""``cnnarch predict NETWORK IMAGE|DIR ... [--weights W]``: the top classes of each image, with
probabilities, each image preprocessed as its weights expect.

cnnarch predict resnet50 cat.jpg --weights IMAGENET1K_V2
cnnarch predict runs/r20/best.pt photos/ --topk 3 --format json
"""

from __future__ import annotations

import argparse
import sys

from cnnarch.cli import add_format_argument
from cnnarch.cli._network import (
    NETWORK_HELP,
    add_precision_argument,
    add_weights_argument,
    chosen_precision,
    load_network,
)
from cnnarch.tables import render


def add_parser(sub):
    p = sub.add_parser(
        "predict",
        help="classify image files with a trained network",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("network", metavar="NETWORK", help=NETWORK_HELP)
    p.add_argument("images", nargs="+", metavar="IMAGE|DIR", help="image files, or directories to search")
    add_weights_argument(p, default="none: give it with a zoo name")
    p.add_argument("--topk", type=int, default=5, metavar="K", help="classes per image (default 5)")
    add_precision_argument(p)
    add_format_argument(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from cnnarch.inference import image_files, predict

    if args.topk < 1:
        raise ValueError(f"--topk must be 1 or more, got {args.topk}")
    net = load_network(args.network, args.weights)
    files = image_files(args.images)
    if not files:
        raise FileNotFoundError(f"no image files in {' '.join(args.images)}")
    results = predict(net, files, topk=args.topk, precision=chosen_precision(args))
    rows = []
    for r in results:
        if r.error:
            print(f"cnnarch predict: {r.path}: {r.error}", file=sys.stderr)
            continue
        rows += [
            {"image": r.path, "rank": i + 1, "class": c, "probability": round(p, 6)}
            for i, (c, p) in enumerate(zip(r.classes, r.probs, strict=True))
        ]
    if rows:
        print(render(rows, args.format, text=lambda c, v: f"{v:.4f}" if c == "probability" else str(v)))
    return 1 if any(r.error for r in results) else 0
