"""``cnnarch summary NAME``: the per-layer profile of a network (shapes, parameters, memory, MACs,
receptive field), as a table, markdown, JSON, CSV or the lecture's own layout."""

from cnnarch.cli import add_format_argument
from cnnarch.cli._names import HELP, LECTURE_MODULES, check_network

__all__ = ["LECTURE_MODULES", "add_parser", "run"]


def add_parser(sub):
    p = sub.add_parser("summary", help="per-layer shapes, parameters, memory, MACs, receptive field")
    p.add_argument("name", help=HELP)
    p.add_argument("--input", metavar="CxHxW", help="e.g. 3x224x224 (default: the model's own)")
    add_format_argument(p, extra=("lecture",))
    p.add_argument("--depth", type=int, default=None, help="collapse modules nested deeper than N")
    p.add_argument("--batch", type=int, default=1, help="batch size (totals are per image)")
    p.add_argument(
        "--device",
        choices=("meta", "cpu"),
        default="meta",
        help="meta: shapes only, nothing allocated (default); cpu: a real pass (a forward reading values)",
    )
    p.add_argument("--gpu-memory", type=float, default=16, metavar="GB", help="for 'images that fit'")
    p.add_argument(
        "--measure",
        action="store_true",
        help="also measure the peak memory of a real forward pass and training step (CUDA if present, "
        "else the CPU) beside the estimate",
    )
    p.set_defaults(run=run)


def run(args) -> int:
    check_network(args.name)  # a mistyped name is answered before torch is imported
    from cnnarch.analysis import build, profile
    from cnnarch.analysis.report import format_lecture, format_table, measured_lines, to_csv, to_json

    if args.depth is not None and args.depth < 1:
        raise ValueError(f"--depth must be 1 or more, got {args.depth}")
    if args.batch < 1:
        raise ValueError(f"--batch must be 1 or more, got {args.batch}")
    model, size = build(args.name, args.device)
    p = profile(model, args.input or size, batch_size=args.batch, device=args.device)
    measured = _measure(args, size) if args.measure else None
    if args.format == "lecture":
        print(format_lecture(p))
    elif args.format == "json":
        print(to_json(p, args.depth, measured))
    elif args.format == "csv":
        print(to_csv(p, args.depth), end="")
    else:
        print(format_table(p, args.depth, markdown=args.format == "markdown", gpu_memory_gb=args.gpu_memory))
    if measured is not None and args.format not in ("json", "csv"):
        print("\n".join(measured_lines(p, measured)))
    return 0


def _measure(args, size):
    import torch

    from cnnarch.analysis import build
    from cnnarch.analysis.measure import measure_memory

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, _ = build(args.name, device)
    return measure_memory(model, args.input or size, batch_size=args.batch, device=device)
