"""One self-contained HTML page per network: the diagram (inline SVG), the per-layer table (sortable by
parameters, MACs, memory), the totals, per-stage parameter and operation bars, and the lecture's claims
about the network with agree/differ and why. Everything is inline (CSS, SVG, a few lines of JS), so the
page opens without network access."""

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

_CSS = """
body { font-family: DejaVu Sans, Verdana, sans-serif; margin: 24px; color: #222; }
h1 { margin-bottom: 4px; } .paper { color: #666; margin-top: 0; }
table { border-collapse: collapse; font-size: 12px; }
th, td { padding: 2px 8px; border-bottom: 1px solid #ddd; }
th { background: #f2f2f2; text-align: left; } th.num, td.num { text-align: right; }
th.sortable { cursor: pointer; } th.sortable:hover { background: #e0e0ff; }
.bars td { border: none; } .bar { height: 12px; background: #7aa6e0; } .bar.macs { background: #f0a860; }
.agree { color: #1a7f37; font-weight: bold; } .differ { color: #c0392b; font-weight: bold; }
.diagram { overflow-x: auto; border: 1px solid #eee; padding: 8px; }
"""

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
            if value:
                cells.append(f'<td class="num" data-v="{value(r)}">{html.escape(text(r))}</td>')
            else:
                cells.append(f"<td>{html.escape(text(r))}</td>")
        body.append(f'<tr data-name="{html.escape(r.name)}">{"".join(cells)}</tr>')
    table = (
        f'<table class="layers"><thead><tr>{"".join(head)}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )
    return table + (_totals(p) if totals else "")


def _totals(p: Profile) -> str:
    return '<ul class="totals">' + "".join(f"<li>{html.escape(t)}</li>" for t in totals_lines(p)) + "</ul>"


def stages(p: Profile) -> list[tuple[str, int, int]]:
    """(top-level module, parameters, MACs) in execution order: the network's stages."""
    out: dict[str, list[int]] = {}
    for r in p.layers:
        acc = out.setdefault(r.name.split(".")[0].split("#")[0], [0, 0])
        acc[0] += r.params
        acc[1] += r.macs
    return [(k, v[0], v[1]) for k, v in out.items()]


def _bars(p: Profile) -> str:
    rows = stages(p)
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


def _claims(name: str) -> str:
    claims = lecture_claims(name)
    if not claims:
        return "<p>The lecture makes no numeric claim about this network.</p>"
    rows = [
        f"<tr><td>{html.escape(c.claim)}</td><td>{html.escape(c.lecture)}</td><td>{html.escape(c.computed)}</td>"
        f'<td class="{c.status}">{c.status}</td><td>{html.escape(c.why)}</td></tr>'
        for c in claims
    ]
    head = "<tr><th>claim</th><th>lecture</th><th>computed</th><th></th><th>why</th></tr>"
    return f'<table class="claims">{head}{"".join(rows)}</table>'


def report_html(name: str, input_size=None, depth: int | None = None) -> str:
    """The page for zoo network ``name``: diagram, totals, stage bars, sortable table, lecture's claims."""
    from cnnarch.analysis.diagram import draw
    from cnnarch.analysis.profiler import profile
    from cnnarch.analysis.zoo import build
    from cnnarch.models import get_model_entry, list_models

    model, size = build(name)
    p = profile(model, input_size or size)
    diagram = draw(model, input_size or size, depth=depth, title=name)
    paper = get_model_entry(name).paper if name in list_models() else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(name)}: cnnarch report</title>
<style>{_CSS}</style></head><body>
<h1>{html.escape(name)}</h1><p class="paper">{html.escape(paper)}</p>
<h2>Totals</h2>{_totals(p)}
<h2>Stages</h2>{_bars(p)}
<h2>Diagram</h2><div class="diagram">{diagram.to_svg()}</div>
<h2>Layers</h2><p>Click parameters, memory or MACs to sort (largest first, again for smallest first);
<code>#sort=MACs</code> at the end of the address opens the page sorted.</p>
{profile_html(p, sortable=True, totals=False)}
<h2>The lecture's claims</h2>{_claims(name)}
<script>{_JS}</script>
</body></html>
"""
