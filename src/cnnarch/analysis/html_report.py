"""One self-contained HTML page per network, laid out to be read as one page at 1x on a laptop screen:
the totals and the lecture's claims about the network (agree/differ and why) at the top; below them the
diagram (inline SVG) beside the per-stage parameter and operation bars and the per-layer table
(sortable by parameters, MACs, memory, with arrows). Everything is inline (CSS, SVG, a few lines of
JS), so the page opens without network access."""

from __future__ import annotations

import html

from cnnarch.analysis.profiler import Profile
from cnnarch.analysis.report import axes_str, human, megabytes, shape_str, totals_lines

# (header, value of a layer for sorting, text); the numeric ones sort as numbers
_COLUMNS = [
    ("layer", None, lambda r: r.name),
    ("type", None, lambda r: r.type),
    ("output", None, lambda r: shape_str(r.output_shape)),
    ("params", lambda r: r.params, lambda r: f"{r.params:,}"),
    (
        "memory",
        lambda r: r.activation_bytes,
        lambda r: megabytes(r.activation_bytes) if r.activation_bytes else "0",
    ),
    ("MACs", lambda r: r.macs, lambda r: human(r.macs) if r.macs else "0"),
    ("RF", None, lambda r: axes_str(r.rf)),
]

# The table's own style, also carried by ``Profile._repr_html_`` (a notebook gives a bare page).
_TABLE_CSS = """
.cnnarch-profile table { border-collapse: collapse; font: 12px/1.35 DejaVu Sans, Verdana, sans-serif; }
.cnnarch-profile th, .cnnarch-profile td { padding: 2px 8px; border-bottom: 1px solid #ddd; }
.cnnarch-profile th { background: #f2f2f2; text-align: left; position: sticky; top: 0; }
.cnnarch-profile th.num, .cnnarch-profile td.num { text-align: right; }
.cnnarch-profile ul.totals { font: 12px/1.4 DejaVu Sans, Verdana, sans-serif; padding-left: 18px; }
"""

_CSS = (
    _TABLE_CSS
    + """
body { font: 13px/1.4 DejaVu Sans, Verdana, sans-serif; margin: 16px 20px; color: #222; }
h1 { font-size: 22px; margin: 0; } h2 { font-size: 15px; margin: 14px 0 6px; }
.paper { color: #666; margin: 2px 0 8px; }
.top { display: flex; flex-wrap: wrap; gap: 8px 32px; align-items: flex-start; }
.top > div { flex: 1 1 380px; min-width: 0; }
.top > div.claims-box { flex: 2 1 620px; max-height: 340px; overflow: auto; border: 1px solid #e4e4e4;
  padding: 0 6px; }
.claims-box h2 { position: sticky; top: 0; background: #fff; margin: 0; padding: 6px 0; }
table.claims { border-collapse: collapse; font-size: 12px; }
table.claims td, table.claims th { padding: 2px 6px; border-bottom: 1px solid #eee; text-align: left;
  vertical-align: top; }
table.claims td.why { color: #555; max-width: 420px; }
.main { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
.diagram { flex: 0 1 auto; max-width: 58%; max-height: 88vh; overflow: auto; }
.diagram h2 { position: sticky; left: 0; }
.tables { flex: 1 1 480px; min-width: 0; }
.layers-box { max-height: 80vh; overflow: auto; border: 1px solid #e4e4e4; }
th.sortable { cursor: pointer; white-space: nowrap; } th.sortable:hover { background: #e0e0ff; }
th.sortable::after { content: " \\21C5"; color: #999; }
th.sortable[data-order="desc"]::after { content: " \\25BC"; color: #000; }
th.sortable[data-order="asc"]::after { content: " \\25B2"; color: #000; }
.bars { border-collapse: collapse; font-size: 12px; }
.bars td, .bars th { padding: 1px 6px; text-align: left; }
.bar { height: 11px; background: #7aa6e0; } .bar.macs { background: #f0a860; }
.agree { color: #1a7f37; font-weight: bold; } .differ { color: #c0392b; font-weight: bold; }
.cited { color: #666; }
"""
)

_JS = r"""
document.querySelectorAll('table.layers th.sortable').forEach(function (th) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0], col = th.cellIndex;
    var down = th.dataset.order !== 'desc';
    th.dataset.order = down ? 'desc' : 'asc';
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = +a.cells[col].dataset.v, y = +b.cells[col].dataset.v;
      return down ? y - x : x - y;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
// page.html#sort=MACs opens sorted
var wanted = location.hash.match(/^#sort=(\w+)/);
var th = wanted && document.querySelector('table.layers th[data-key="' + wanted[1] + '"]');
if (th) th.click();
"""


def profile_html(p: Profile, sortable: bool = False, totals: bool = True) -> str:
    """The per-layer table (one row per layer of the profile) and the totals, as an HTML fragment."""
    head = []
    for name, value, _ in _COLUMNS:
        cls = "num sortable" if value and sortable else "num" if value else ""
        tip = f' title="click to sort" data-key="{name}"' if value and sortable else ""
        head.append(f'<th class="{cls}"{tip}>{name}</th>')
    body = []
    for r in p.layers:
        cells = []
        for _, value, text in _COLUMNS:
            number = f' class="num" data-v="{value(r)}"' if value else ""
            cells.append(f"<td{number}>{html.escape(text(r))}</td>")
        body.append(f'<tr data-name="{html.escape(r.name)}">{"".join(cells)}</tr>')
    table = (
        f'<table class="layers"><thead><tr>{"".join(head)}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )
    return table + (_totals(p) if totals else "")


def profile_page(p: Profile) -> str:
    """:func:`profile_html` with its own minimal style, for a notebook cell."""
    return f'<div class="cnnarch-profile"><style>{_TABLE_CSS}</style>{profile_html(p)}</div>'


def _totals(p: Profile, extra: list[str] = ()) -> str:
    lines = [*totals_lines(p), *extra]
    return '<ul class="totals">' + "".join(f"<li>{html.escape(t)}</li>" for t in lines) + "</ul>"


def stages(p: Profile) -> list[tuple[str, int, int]]:
    """(top-level module, parameters, MACs) in execution order: the network's stages."""
    out: dict[str, list[int]] = {}
    for r in p.layers:
        acc = out.setdefault(r.name.split(".")[0].split("#")[0], [0, 0])
        acc[0] += r.params
        acc[1] += r.macs
    return [(k, v[0], v[1]) for k, v in out.items()]


def _bars(p: Profile) -> str:
    rows = [r for r in stages(p) if r[1] or r[2]]  # a ReLU or pool of its own at the top: no bar
    top_p = max(r[1] for r in rows) or 1
    top_m = max(r[2] for r in rows) or 1

    def bar(value, top, cls):
        return (f'<td class="num">{human(value) if value else 0}</td><td style="width:260px">'
                f'<div class="{cls}" style="width:{100 * value / top:.1f}%"></div></td>')  # fmt: skip

    out = ['<table class="bars"><tr><th>stage</th><th>parameters</th><th></th><th>MACs</th><th></th></tr>']
    for name, params, macs in rows:
        out.append(
            f"<tr><td>{html.escape(name)}</td>{bar(params, top_p, 'bar')}{bar(macs, top_m, 'bar macs')}</tr>"
        )
    return "".join(out) + "</table>"


def lecture_claims(name: str) -> list:
    """The lecture's claims about network ``name`` (:func:`cnnarch.analysis.lecture.claims_for`); for a
    network the lecture does not measure itself, those of its family's section (any ResNet gets the
    ResNet section); empty where the lecture says nothing about it."""
    from cnnarch.analysis.lecture import check_lecture, claims_for

    claims = claims_for(name)
    if claims or not name.startswith(("resnet", "vgg")):
        return claims
    return check_lecture("ResNet" if name.startswith("resnet") else "VGG-16")


def _claim_counts(name: str) -> str:
    claims = lecture_claims(name)
    if not claims:
        return ""
    counts = {s: sum(c.status == s for c in claims) for s in ("agree", "differ", "cited")}
    return f": {len(claims)}, " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)


def _claims(name: str) -> str:
    claims = lecture_claims(name)
    if not claims:
        return "<p>The lecture makes no numeric claim about this network.</p>"
    rows = [
        f"<tr><td>{html.escape(c.claim)}</td><td>{html.escape(c.lecture)}</td><td>{html.escape(c.computed)}</td>"
        f'<td class="{c.status}">{c.status}</td><td class="why">{html.escape(c.why)}</td></tr>'
        for c in claims
    ]
    head = "<tr><th>claim</th><th>lecture</th><th>computed</th><th></th><th>why</th></tr>"
    return f'<table class="claims">{head}{"".join(rows)}</table>'


def report_html(name: str, input_size=None, depth: int | None = None, measure: bool = True) -> str:
    """The page for network ``name`` (any name :func:`~cnnarch.analysis.zoo.build` takes): totals and
    the lecture's claims, then the diagram beside the stage bars and the sortable table. ``measure``:
    also run the network for real on the CPU (or CUDA) to measure its memory beside the estimate."""
    from cnnarch.analysis.diagram import draw
    from cnnarch.analysis.profiler import profile
    from cnnarch.analysis.zoo import build
    from cnnarch.models import get_model_entry, list_models

    model, size = build(name)
    size = input_size or size
    p = profile(model, size)
    diagram = draw(model, size, depth=depth, title=name)
    paper = get_model_entry(name).paper if name in list_models() else ""
    extra = _measured(name, size, p) if measure else []
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(name)}: cnnarch report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{_CSS}</style></head><body>
<h1>{html.escape(name)}</h1><p class="paper">{html.escape(paper)}</p>
<div class="top">
<div class="cnnarch-profile"><h2>Totals</h2>{_totals(p, extra)}</div>
<div class="claims-box"><h2>The lecture's claims{_claim_counts(name)}</h2>{_claims(name)}</div>
</div>
<div class="main">
<div class="diagram"><h2>Diagram</h2>{diagram.to_svg()}</div>
<div class="tables">
<h2>Stages</h2>{_bars(p)}
<h2>Layers</h2><p>Click parameters, memory or MACs to sort (largest first, again for smallest first);
<code>#sort=MACs</code> at the end of the address opens the page sorted.</p>
<div class="layers-box cnnarch-profile">{profile_html(p, sortable=True, totals=False)}</div>
</div>
</div>
<script>{_JS}</script>
</body></html>
"""


def _measured(name: str, size, p: Profile) -> list[str]:
    """The measured-memory lines, or one line saying why the network could not be measured."""
    import torch

    from cnnarch.analysis.measure import measure_memory
    from cnnarch.analysis.report import measured_lines
    from cnnarch.analysis.zoo import build

    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        model, _ = build(name, device)
        return measured_lines(p, measure_memory(model, size, device=device))
    except (RuntimeError, NotImplementedError, ValueError) as e:
        return [f"memory not measured: {str(e).splitlines()[0]}"]
