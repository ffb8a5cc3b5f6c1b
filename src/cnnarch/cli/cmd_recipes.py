"""``cnnarch recipes [NAME]``: the lecture's training recipes with every hyperparameter they set."""

from cnnarch.train.config import RECIPES, get_recipe, resolve_config


def add_parser(sub):
    p = sub.add_parser("recipes", help="list the training recipes and their hyperparameters")
    p.add_argument("name", nargs="?", help="show only this recipe")
    p.add_argument("--full", action="store_true", help="also show the defaults a recipe does not set")
    p.set_defaults(run=run)


def run(args) -> int:
    names = [get_recipe(args.name).name] if args.name else list(RECIPES)
    for i, name in enumerate(names):
        r = RECIPES[name]
        if i:
            print()
        print(f"{name}  ({r.source})")
        cfg = resolve_config(recipe=name)
        width = max(map(len, r.values))
        shown = cfg.to_dict() if args.full else {k: getattr(cfg, k) for k in r.values}
        for k, v in shown.items():
            if k not in ("notes", "recipe"):
                print(f"  {k:<{width}} = {v!r}")
        for note in r.notes:
            print(f"  note: {note}")
    print("\noverride any value on the command line: cnnarch train --recipe NAME --lr 0.05 ...")
    return 0
