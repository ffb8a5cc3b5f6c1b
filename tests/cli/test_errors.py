"""The error boundary of `cnnarch`: each class of error a user can cause ends in one or two lines and
a documented exit status, never a traceback."""

import pytest

from cnnarch import errors
from cnnarch.cli import cmd_list, main


def raise_in_list(monkeypatch, exc):
    def run(args):
        raise exc

    monkeypatch.setattr(cmd_list, "run", run)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.UsageError("out.pt exists", hint="pass --overwrite to replace it"), 2),
        (errors.InputError("w.pt holds NaN weights", hint="train again or pick another file"), 2),
        (errors.ResourceError("needs 7.6 GB, 2.0 GB free", hint="use a smaller --input"), 1),
    ],
)
def test_cnnarch_errors_print_message_and_hint(monkeypatch, capsys, exc, code):
    raise_in_list(monkeypatch, exc)
    assert main(["list"]) == code
    err = capsys.readouterr().err.splitlines()
    assert err == [f"cnnarch list: error: {exc}", exc.hint]


def test_usage_and_input_errors_stay_value_errors():
    # library callers written against `except ValueError` keep working
    assert issubclass(errors.UsageError, ValueError) and issubclass(errors.InputError, ValueError)
