"""``cnnarch predict IMAGE|DIR ... (--checkpoint CKPT | --model NAME --weights W)``: the top classes of
each image, with probabilities, each image preprocessed as its weights expect.

cnnarch predict cat.jpg --model resnet50 --weights IMAGENET1K_V2
cnnarch predict photos/ --checkpoint runs/r20/best.pt --topk 3 --format json
"""

from __future__ import annotations

import argparse
import sys

from cnnarch.cli._table import add_format_argument, render


def add_parser(sub):
    p = sub.add_parser(
        "predict",
        help="classify image files with a trained network",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("images", nargs="+", metavar="IMAGE|DIR", help="image files, or directories to search")
    p.add_argument("--checkpoint", metavar="CKPT", help="a cnnarch checkpoint (best.pt, last.pt)")
    p.add_argument("--model", metavar="NAME", help="a network of the zoo, with --weights")
    p.add_argument("--weights", metavar="W", help="a weight name (IMAGENET1K_V1, DEFAULT), file or URL")
    p.add_argument("--topk", type=int, default=5, metavar="K", help="classes per image (default 5)")
    add_format_argument(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from cnnarch.inference import image_files, load_model, predict

    if args.topk < 1:
        raise ValueError(f"--topk must be 1 or more, got {args.topk}")
    net = load_model(checkpoint=args.checkpoint, model=args.model, weights=args.weights)
    files = image_files(args.images)
    if not files:
        raise FileNotFoundError(f"no image files in {' '.join(args.images)}")
    results = predict(net, files, topk=args.topk)
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
