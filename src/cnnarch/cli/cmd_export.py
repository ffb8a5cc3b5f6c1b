"""``cnnarch export NETWORK --to onnx|torchscript|safetensors --out FILE``: a network for ONNX Runtime,
Netron or C++ (TorchScript), with its weights when given; or a training checkpoint's weights with their
metadata (classes, preprocessing, test accuracy, the run's configuration and date) as safetensors, the
form in which cnnarch ships trained weights (``create_model(name, weights=FILE)``).

cnnarch export resnet20 --to onnx --out resnet20.onnx --input 3x32x32
cnnarch export runs/r20/best.pt --to onnx --out r20.onnx --check
cnnarch export resnet50 --weights IMAGENET1K_V2 --to torchscript --out r50.pt
cnnarch export runs/r20/best.pt --to safetensors --out resnet20-cifar10.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnarch.cli._network import NETWORK_HELP, add_weights_argument, is_checkpoint, load_network
from cnnarch.errors import UsageError

FILE_FORMATS = ("onnx", "torchscript", "safetensors")


def add_parser(sub):
    p = sub.add_parser(
        "export",
        help="write a network as ONNX, TorchScript or safetensors",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("network", metavar="NETWORK", help=NETWORK_HELP)
    p.add_argument("--to", choices=FILE_FORMATS, default="onnx", help="the file format (default onnx)")
    p.add_argument("--out", required=True, metavar="FILE", help="the file to write")
    add_weights_argument(p)
    p.add_argument(
        "--num-classes", type=int, metavar="N", help="with a zoo name and no weights (default 1000)"
    )
    p.add_argument(
        "--input", metavar="CxHxW", help="input size (default: the weights' crop, else the model's)"
    )
    p.add_argument(
        "--check", action="store_true", help="run the ONNX file in ONNX Runtime and compare logits"
    )
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(run=run)


def run(args) -> int:
    if args.check and args.to != "onnx":
        raise UsageError("--check runs ONNX Runtime", hint="use it with --to onnx")
    import torch

    from cnnarch.analysis.profiler import parse_input_size
    from cnnarch.cli._output import output_file, written_whole
    from cnnarch.inference import export, in_channels
    from cnnarch.models import check_input, get_model_entry
    from cnnarch.models.weights import with_run_record
    from cnnarch.progress import phase

    shape = parse_input_size(args.input) if args.input else None
    inputs = [p for p in (args.network, args.weights) if p and Path(p).is_file()]
    out = output_file(args.out, overwrite=args.overwrite, inputs=inputs)
    net = load_network(args.network, args.weights, trained=False, num_classes=args.num_classes)
    if is_checkpoint(args.network):
        net.weights_meta = with_run_record(net.weights_meta, Path(args.network))
    if args.to == "safetensors" and not hasattr(net, "weights_meta"):
        raise UsageError(
            "--to safetensors writes trained weights", hint="give a checkpoint, or a zoo name with --weights"
        )
    meta = getattr(net, "weights_meta", None)
    if shape is None:
        shape = (in_channels(net), meta.crop, meta.crop) if meta else get_model_entry(args.network).input_size
    check_input(net, torch.empty(1, *shape))  # tracing for export skips this check of forward
    with written_whole(out) as tmp, phase(f"exporting {args.network} to {args.to}"):
        export(net, args.to, tmp, shape)
    print(f"{args.to} written to {out} (input N x {'x'.join(map(str, shape))})")
    if args.check:
        import onnxruntime as ort

        x = torch.randn(3, *shape)
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])
        with torch.no_grad():
            diff = (got - net(x)).abs().max().item()
        print(f"ONNX Runtime vs PyTorch on 3 random inputs: max |logit difference| {diff:.2e}")
    return 0
