"""A command that needs an optional dependency that is not installed says which extra to install: one
line, exit 2, no traceback."""

import subprocess
import sys

import pytest

BLOCKED = """
import sys
for name in ("onnx", "onnxscript", "onnxruntime"):
    sys.modules[name] = None  # as if the export extra were not installed: importing them fails
from cnnarch.cli import main
sys.exit(main(["export", "resnet20", "--to", "onnx", "--out", sys.argv[1]]))
"""


@pytest.mark.slow
def test_onnx_export_without_the_extra_names_the_pip_command(tmp_path):
    out = tmp_path / "net.onnx"
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKED, str(out)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'cnnarch[export]'" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()
