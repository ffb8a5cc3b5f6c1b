"""``cnnarch recipes [NAME]``: the lecture's training recipes with every hyperparameter they set."""

from cnnarch.cli import add_format_argument
from cnnarch.tables import render
from cnnarch.train.config import RECIPES, get_recipe, resolve_config


def add_parser(sub):
    p = sub.add_parser("recipes", help="list the training recipes and their hyperparameters")
    p.add_argument("name", nargs="?", help="show only this recipe")
    p.add_argument("--full", action="store_true", help="also show the defaults a recipe does not set")
    add_format_argument(p)
    p.set_defaults(run=run)


def _text(_column, value) -> str:
    """Values as the command line writes them: ``0.0005``, ``32000, 48000``, ``-`` for none."""
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def rows_of(name: str, full: bool) -> list[dict]:
    """One row per option the recipe sets (every option with ``full``), then its source and notes."""
    r = RECIPES[name]
    cfg = resolve_config(recipe=name)
    keys = [k for k in cfg.option_names() if k not in ("notes", "recipe")] if full else list(r.values)
    values = cfg.flat()
    rows = [{"recipe": name, "option": k, "value": values[k]} for k in keys]
    rows.append({"recipe": name, "option": "source", "value": r.source})
    return rows + [{"recipe": name, "option": "note", "value": note} for note in r.notes]


def run(args) -> int:
    names = [get_recipe(args.name).name] if args.name else list(RECIPES)
    rows = [row for name in names for row in rows_of(name, args.full)]
    if args.format == "csv":
        # a list in one cell as the command line takes it (--decay-milestones 32000 48000)
        rows = [
            {**r, "value": " ".join(map(str, r["value"]))} if isinstance(r["value"], (list, tuple)) else r
            for r in rows
        ]
    print(render(rows, args.format, text=_text))
    if args.format == "table":
        print("\noverride any value on the command line: cnnarch train --recipe NAME --lr 0.05 ...")
    return 0
