"""How every command names a trained network: a positional ``NETWORK``, either a zoo name (with
``--weights W``: a weight name, a file or a URL) or the path of a cnnarch checkpoint (``best.pt``,
``last.pt``), which holds its own weights."""

from __future__ import annotations

from pathlib import Path

from cnnarch.errors import UsageError

NETWORK_HELP = "a network of the zoo (with --weights), or a cnnarch checkpoint (best.pt, last.pt)"


def add_weights_argument(parser, default: str = "none: untrained") -> None:
    parser.add_argument(
        "--weights", metavar="W", help=f"with a zoo name: a weight name, file or URL (default {default})"
    )


def add_precision_argument(parser) -> None:
    from cnnarch.train.config import PRECISIONS

    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto (default): bf16 autocast with channels-last where the CPU has AMX or AVX512-BF16 "
        "units (or on a GPU), else fp32; fp32 or bf16 to choose",
    )


def chosen_precision(args, device="cpu"):
    """``--precision`` resolved for ``device``, the choice printed in one line (on stderr: the results
    own stdout)."""
    import sys

    from cnnarch.train.device import choose_precision

    precision = choose_precision(args.precision, device)
    print(precision, file=sys.stderr)
    return precision


def is_checkpoint(source: str) -> bool:
    """A file, or something written as a path (a checkpoint that is missing is named as such)."""
    return Path(source).is_file() or "/" in source or source.endswith((".pt", ".pth"))


def load_network(source: str, weights: str | None, *, trained: bool = True, num_classes: int | None = None):
    """The network ``source`` names, in eval mode. ``trained``: a zoo name needs ``--weights``."""
    from cnnarch.inference import load_model

    if is_checkpoint(source):
        if weights is not None:
            raise UsageError(
                f"{source} is a checkpoint: it holds its weights", hint="drop --weights, or give a zoo name"
            )
        return load_model(checkpoint=source)
    if weights is None and trained:
        raise UsageError(
            f"{source} is a network of the zoo: which weights?",
            hint="add --weights W (a weight name such as IMAGENET1K_V1, a file or a URL), or a checkpoint",
        )
    if weights is None:
        from cnnarch.models import create_model

        return create_model(source, **({} if num_classes is None else {"num_classes": num_classes})).eval()
    return load_model(model=source, weights=weights, num_classes=num_classes)
