"""Side-by-side numbers of several networks, and the classic chart of accuracy against operations
(Canziani et al. 2016, the chart CS231n shows): x = GMACs per image, y = top-1 and top-5 accuracy on two
panels, bubble area proportional to parameters."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from cnnarch.analysis.profiler import profile
from cnnarch.analysis.published import published
from cnnarch.analysis.zoo import build
from cnnarch.tables import text_table

# the networks the lecture's own comparison chart shows (CS231n, after Canziani et al. 2016), in its
# order: the default of `cnnarch compare`
DEFAULT_MODELS = ["alexnet", "vgg16", "vgg19", "googlenet", "resnet18", "resnet34", "resnet50", "resnet152"]


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
    """Write :func:`chart` to ``path``; returns the names left out for lack of a published ImageNet
    result."""
    chart(rows).savefig(path)
    return [r.name for r in rows if r.top1_err is None and r.top5_err is None]


def chart(rows: list[Row]):
    """Two panels sharing the x axis (GMACs per image): top-1 accuracy and top-5 accuracy (100 - the
    published error), bubble area by parameters. A network with only a top-5 figure (GoogLeNet) appears
    only on the top-5 panel."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: a caller's (a notebook's) backend stays as it is

    shown = [r for r in rows if r.top1_err is not None or r.top5_err is not None]
    color = {r.name: f"C{i % 10}" for i, r in enumerate(shown)}  # a network keeps its colour on both panels
    fig = Figure(figsize=(12, 5.5), dpi=120)
    FigureCanvasAgg(fig)  # the labels are placed with its renderer
    axes = fig.subplots(1, 2, sharex=True)
    panels = []
    for ax, top, attr in ((axes[0], "top-1", "top1_err"), (axes[1], "top-5", "top5_err")):
        points = [(r, 100 - getattr(r, attr)) for r in shown if getattr(r, attr) is not None]
        for r, acc in points:
            ax.scatter(r.gmacs, acc, s=r.params / 1e6 * 12, alpha=0.45, color=color[r.name], edgecolors="k")
        ax.set_title(f"ImageNet {top} accuracy")
        ax.set_ylabel(f"{top} accuracy, % (100 - published {top} error)")
        ax.set_xlabel("operations per image, GMACs (at each network's own input size)")
        ax.grid(alpha=0.3)
        ax.margins(0.18, 0.2)
        labels = [
            (r.gmacs, acc, f"{r.name} ({r.params / 1e6:.0f}M)", r.params / 1e6 * 12) for r, acc in points
        ]
        panels.append((ax, labels))
    fig.suptitle("Accuracy vs operations; bubble area ~ parameters")
    fig.tight_layout()  # before placing labels: placement works in the final pixel positions
    for ax, labels in panels:
        _label_without_overlap(ax, labels)
    return fig


def _label_without_overlap(ax, points: list[tuple[float, float, str, float]]) -> None:
    """Put each label at the first of a fixed list of spots around its bubble (beside it, then at the
    corners, then above and below; nearest first) where it touches no bubble and no label placed before
    and stays inside the axes. Labels set apart from their bubble get a leader line."""
    fig = ax.figure
    ax.set_xlim(ax.get_xlim())  # freeze the limits the bubbles gave
    ax.set_ylim(ax.get_ylim())
    renderer = fig.canvas.get_renderer()
    px = fig.dpi / 72  # pixels per point
    bubbles = [(*ax.transData.transform((x, y)), area**0.5 / 2 * px) for x, y, _, area in points]
    frame = ax.get_window_extent(renderer)
    labels = []

    def free(box) -> bool:
        if not (frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)):
            return False
        for cx, cy, r in bubbles:  # the box's point nearest the bubble's centre is outside the bubble
            nx, ny = min(max(cx, box.x0), box.x1), min(max(cy, box.y0), box.y1)
            if (nx - cx) ** 2 + (ny - cy) ** 2 < r**2:
                return False
        return not any(box.overlaps(other) for other in labels)

    directions = [(1, 0), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1), (0, 1), (0, -1)]
    for x, y, label, area in sorted(points, key=lambda p: -p[1]):
        radius = area**0.5 / 2
        for step, (dx, dy) in ((s, d) for s in (3, 10, 20, 35, 55) for d in directions):
            k = 0.75 if dx and dy else 1.0  # corners: on the diagonal of the circle, not of its square
            off = (dx * k * (radius + step), dy * k * (radius + step))
            ha = "left" if dx > 0 else "right" if dx < 0 else "center"
            va = "bottom" if dy > 0 else "top" if dy < 0 else "center"
            arrow = {"arrowstyle": "-", "color": "0.35", "lw": 0.7} if step > 10 else None
            text = ax.annotate(label, (x, y), off, textcoords="offset points", ha=ha, va=va, fontsize=8,
                               arrowprops=arrow)  # fmt: skip
            box = text.get_window_extent(renderer).padded(2)
            if free(box):
                labels.append(box)
                break
            text.remove()
        else:  # nowhere free: beside the bubble, overlapping
            ax.annotate(label, (x, y), (radius + 3, 0), textcoords="offset points", va="center", fontsize=8)
