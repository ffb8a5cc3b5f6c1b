"""``cnnarch train`` as ``torchrun`` starts it, with three test hooks set by environment variables:

- ``DDP_TEST_CIFAR10_URL`` / ``DDP_TEST_CIFAR10_MD5``: CIFAR-10's official archive is fetched from there
  (a server on 127.0.0.1) instead of the internet;
- ``DDP_TEST_EVENTS``: every download and extraction appends ``<what> rank <RANK> local <LOCAL_RANK>``
  to this file;
- ``DDP_TEST_CRASH_AFTER_EPOCH``: in torchrun's first attempt (``TORCHELASTIC_RESTART_COUNT`` 0),
  process 0 exits with code 17 when it starts the epoch after that one (1-based), its checkpoint and
  metrics written, as a machine failure would end it; ``torchrun --max-restarts`` then starts every
  process again.

Started as ``python -m torch.distributed.run [torchrun options] ddp_entry.py [cnnarch train options]``.
"""

import dataclasses
import os
import sys

from cnnarch.cli import main
from cnnarch.data import datasets
from cnnarch.train import trainer


def _log(what: str) -> None:
    with open(os.environ["DDP_TEST_EVENTS"], "a") as f:
        f.write(f"{what} rank {os.environ.get('RANK')} local {os.environ.get('LOCAL_RANK')}\n")


def _logged(name, fn):
    def wrapper(*args, **kwargs):
        _log(name)
        return fn(*args, **kwargs)

    return wrapper


if os.environ.get("DDP_TEST_CIFAR10_URL"):
    datasets.CIFAR10 = dataclasses.replace(
        datasets.CIFAR10, url=os.environ["DDP_TEST_CIFAR10_URL"], md5=os.environ["DDP_TEST_CIFAR10_MD5"]
    )
if os.environ.get("DDP_TEST_EVENTS"):
    datasets.download = _logged("download", datasets.download)
    datasets.extract = _logged("extract", datasets.extract)

crash_epoch = os.environ.get("DDP_TEST_CRASH_AFTER_EPOCH")
if crash_epoch and os.environ.get("TORCHELASTIC_RESTART_COUNT") == "0" and os.environ.get("RANK") == "0":
    train_epoch = trainer.Trainer.train_epoch

    def crash_before_the_next_epoch(self, epoch):
        if epoch == int(crash_epoch):
            os._exit(17)
        return train_epoch(self, epoch)

    trainer.Trainer.train_epoch = crash_before_the_next_epoch

sys.exit(main(["train", *sys.argv[1:]]))
