"""Side-by-side numbers of several networks, and the classic chart of accuracy against operations
(Canziani et al. 2016, the chart CS231n shows): x = GMACs per image, y = top-1 accuracy, bubble area
proportional to parameters."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from cnnarch.analysis.profiler import profile
from cnnarch.analysis.published import published
from cnnarch.analysis.report import text_table
from cnnarch.analysis.zoo import build


@dataclass(frozen=True)
class Row:
    name: str
    input: str
    params: int
    gmacs: float
    forward_mb: float
    depth: int
    top1_err: float | None
    top5_err: float | None
    source: str


def compare(names: list[str]) -> list[Row]:
    rows = []
    for name in names:
        model, size = build(name)
        p = profile(model, size)
        pub = published(name)
        rows.append(
            Row(
                name=name,
                input="x".join(map(str, size)),
                params=p.inference_params,
                gmacs=p.macs_per_image / 1e9,
                forward_mb=p.forward_bytes_per_image / 1e6,
                depth=p.depth,
                top1_err=pub.top1_err if pub else None,
                top5_err=pub.top5_err if pub else None,
                source=pub.source if pub else "no published ImageNet result",
            )
        )
    return rows


HEADER = ["model", "input", "params used", "GMACs", "fwd MB/img", "depth", "top-1 err", "top-5 err", "source"]


def _cells(r: Row) -> list[str]:
    def err(v):
        return "-" if v is None else f"{v:.2f}%"

    return [r.name, r.input, f"{r.params / 1e6:.1f}M", f"{r.gmacs:.3f}", f"{r.forward_mb:.1f}", str(r.depth),
            err(r.top1_err), err(r.top5_err), r.source]  # fmt: skip


def records(rows: list[Row]) -> list[dict]:
    """One dict per network, numbers as numbers: parameters counted, GMACs, forward MB per image,
    published errors in % (``None`` where none is published)."""
    return [{**asdict(r), "input": [int(v) for v in r.input.split("x")]} for r in rows]


def format_compare(rows: list[Row], markdown: bool = False) -> str:
    return text_table(HEADER, [_cells(r) for r in rows], {2, 3, 4, 5, 6, 7}, markdown)


def plot(rows: list[Row], path: str) -> list[str]:
    """Accuracy (100 - top-1 error; top-5 where top-1 is not published) against GMACs, bubble area by
    parameters. Returns the names left out for lack of a published ImageNet result."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r.top1_err is not None or r.top5_err is not None]
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    placed: list[tuple[float, float]] = []
    for r in sorted(shown, key=lambda r: r.gmacs):
        top5 = r.top1_err is None
        acc = 100 - (r.top5_err if top5 else r.top1_err)
        ax.scatter(
            r.gmacs, acc, s=r.params / 1e6 * 12, alpha=0.45, edgecolors="k", marker="s" if top5 else "o"
        )
        # neighbours' labels go below instead of on top of each other
        near = sum(abs(x - r.gmacs) < 1.5 and abs(y - acc) < 1.5 for x, y in placed)
        placed.append((r.gmacs, acc))
        label = f"{r.name} ({r.params / 1e6:.0f}M)" + (" top-5" if top5 else "")
        ax.annotate(label, (r.gmacs, acc), textcoords="offset points", xytext=(6, 6 - 12 * near), fontsize=8)
    ax.set_xlabel("operations per image, GMACs (at each network's own input size)")
    ax.set_ylabel("ImageNet accuracy, % (top-1; squares: top-5, no top-1 published)")
    ax.set_title("Accuracy vs operations; bubble area ~ parameters")
    ax.grid(alpha=0.3)
    ax.margins(0.15)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return [r.name for r in rows if r not in shown]
