"""One grammar for every command (docs/cli.md), checked on each command's own parser."""

import argparse
import json

from cnnarch.cli import COMMANDS, build_parser, main, subparsers

PARSERS = subparsers(build_parser())
OUTPUT_FORMS = {"table", "markdown", "json", "csv"}
TRAINED = ("eval", "predict", "export")  # the commands that take a trained network


def options(parser) -> dict[str, argparse.Action]:
    return {s: a for a in parser._actions for s in a.option_strings}


def with_option(flag: str) -> dict[str, argparse.Action]:
    return {name: options(p)[flag] for name, p in PARSERS.items() if flag in options(p)}


def test_every_command_is_walked():
    assert {"list", "train", "export", "assignment init", "assignment check"} <= set(PARSERS)
    assert set(COMMANDS) | {"assignment init", "assignment check"} <= set(PARSERS)


def test_format_is_only_ever_the_output_form():
    found = with_option("--format")
    printing = {
        "list",
        "info",
        "summary",
        "lecture",
        "compare",
        "eval",
        "recipes",
        "predict",
        "assignment check",
    }
    assert printing <= set(found)
    extra = {"info": {"text"}, "summary": {"lecture"}}  # a command's own printed layout, never a file
    for name, action in found.items():
        assert set(action.choices) - extra.get(name, set()) == OUTPUT_FORMS, name


def test_export_names_the_file_format_with_to():
    assert set(with_option("--to")) == {"export"}
    assert set(options(PARSERS["export"])["--to"].choices) == {"onnx", "torchscript", "safetensors"}


def test_a_trained_network_is_named_one_way():
    for name in TRAINED:
        parser = PARSERS[name]
        positional = [a for a in parser._actions if not a.option_strings]
        assert positional[0].metavar == "NETWORK", name
        assert "--weights" in options(parser) and not {"--model", "--checkpoint"} & set(options(parser))
    assert set(with_option("--weights")) == set(TRAINED)
    assert {a.metavar for a in with_option("--weights").values()} == {"W"}


def test_out_is_a_file_and_output_a_run_folder():
    outs, runs = with_option("--out"), with_option("--output")
    assert set(outs) == {"compare", "draw", "report", "export"}
    assert {a.metavar for a in outs.values()} == {"FILE"}
    assert set(runs) == {"train", "experiment"} and {a.metavar for a in runs.values()} == {"DIR"}
    for flag in ("--plot", "--save", "--output-dir", "--out-dir", "--dest", "--checkpoint"):
        assert not with_option(flag), f"{flag}: write --out FILE or --output DIR"


def test_every_command_that_writes_asks_before_replacing_with_overwrite():
    writers = (
        set(with_option("--out")) | set(with_option("--output")) | {"assignment init", "assignment release"}
    )
    # an experiment never replaces its folder: it refuses it, or continues it with --resume
    assert set(with_option("--overwrite")) == writers - {"experiment"}
    assert not with_option("--force") or set(with_option("--force")) == {"assignment init"}  # its old name


def test_resume_means_the_same_in_train_and_experiment():
    found = with_option("--resume")
    assert set(found) == {"train", "experiment"}
    assert {(a.nargs, a.const, a.metavar) for a in found.values()} == {("?", "", "RUN")}


def test_input_is_cxhxw_everywhere():
    found = with_option("--input")
    assert set(found) == {"summary", "draw", "report", "export"}
    assert {a.metavar for a in found.values()} == {"CxHxW"}


def test_flags_shared_with_train_are_built_as_train_builds_them():
    train = options(PARSERS["train"])
    shared = {
        "eval": ["--data", "--limit-val", "--skip-corrupt", "--batch-size", "--device"],
        "experiment": ["--data", "--limit-train", "--limit-val", "--device"],
    }
    same = ("option_strings", "type", "nargs", "choices", "metavar")
    for name, flags in shared.items():
        for flag in flags:
            mine = options(PARSERS[name])[flag]
            assert [getattr(mine, k) for k in same] == [getattr(train[flag], k) for k in same], (name, flag)
            assert type(mine) is type(train[flag]), (name, flag)


def test_help_has_no_rest_markup():
    for name, parser in PARSERS.items():
        assert "``" not in parser.format_help(), name


def test_json_writes_a_shape_as_a_list_everywhere(capsys):
    shapes = []
    for argv in (["list", "alexnet"], ["info", "alexnet"], ["compare", "alexnet"]):
        assert main([*argv, "--format", "json"]) == 0
        shapes.append(json.loads(capsys.readouterr().out)[0]["input"])
    assert shapes == [[3, 227, 227]] * 3  # Krizhevsky et al. 2012 as torchvision's AlexNet notes it


def test_experiment_resume_names_the_folder_as_train_does(monkeypatch, tmp_path, capsys):
    import cnnarch.experiments

    seen = []
    monkeypatch.setattr(cnnarch.experiments, "run_experiment", lambda ctx, report_only: seen.append(ctx))
    run = str(tmp_path / "ic")
    assert main(["experiment", "inception-cost", "--resume", run]) == 0
    assert main(["experiment", "inception-cost", "--output", run, "--resume"]) == 0
    assert main(["experiment", "inception-cost", "--output", run]) == 0
    assert [(str(c.output), c.resume) for c in seen] == [(run, True), (run, True), (run, False)]
    assert main(["experiment", "inception-cost", "--output", run, "--resume", str(tmp_path / "x")]) == 2
    assert "give one of the two" in capsys.readouterr().err
