"""A tiny training run that kills itself with SIGKILL (as ``kill -9`` would) at a chosen point, for
``test_fault_injection.py``.

python fault_child.py OUT KIND N   # KIND: step, eval, save or none; dies at the N-th such event

A run continues (``--resume OUT``) when ``OUT/last.pt`` exists, else starts. ``step`` dies inside a training
step (its batch drawn, no update yet), ``eval`` inside a validation pass, ``save`` with half of a
checkpoint written to its temporary file.
"""

import io
import os
import signal
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

import synthetic  # noqa: E402

import cnnarch.data.base  # noqa: E402
from cnnarch.train.config import resolve_config  # noqa: E402
from cnnarch.train.trainer import Trainer, config_for_resume  # noqa: E402

EPOCHS, IMAGES, BATCH = 3, 96, 16  # 4 training steps and 2 validation batches per epoch


def main(out: str, kind: str, n: int) -> None:
    torch.set_num_threads(1)
    seen = {"step": 0, "eval": 0, "save": 0}

    def event(name: str) -> None:
        seen[name] += 1
        if name == kind and seen[name] == n:
            os.kill(os.getpid(), signal.SIGKILL)

    x, y = synthetic.blob_images(IMAGES)
    data = synthetic.bundle(x, y, BATCH, 4)
    train_tf, eval_tf = data.train_transform, data.eval_transform
    data.train_transform = lambda b, g: (event("step"), train_tf(b, g))[1]
    data.eval_transform = lambda b: (event("eval"), eval_tf(b))[1]
    save = torch.save

    def half_then_event(obj, f):
        buf = io.BytesIO()
        save(obj, buf)
        f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        f.flush()
        event("save")
        f.seek(0)
        f.truncate()
        save(obj, f)

    cnnarch.data.base.torch.save = half_then_event  # the call inside atomic_torch_save
    if (Path(out) / "last.pt").is_file():
        cfg = config_for_resume(out, {})
    else:
        cfg = resolve_config(
            model="tiny", epochs=EPOCHS, batch_size=BATCH, lr=0.05, sched="cosine", output=out, log_interval=0
        )
    Trainer(cfg, data, model=synthetic.tiny_cnn, log=lambda s: None).fit()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
