"""Two CPU processes (gloo, started as torchrun starts them) train to the same weights as one process
with the same global batch: each takes half of every batch, DDP averages the gradients."""

import torch

from cnnarch.train.checkpoint import load_checkpoint


def test_two_processes_equal_one(tmp_path, syn):
    syn.ddp_main(str(tmp_path / "one"), world_size=1, rank=0)  # first: the forks inherit its imports

    assert syn.run_forked_processes(str(tmp_path / "two"), world_size=2) == [0, 0]

    two = load_checkpoint(tmp_path / "two/last.pt")
    one = load_checkpoint(tmp_path / "one/last.pt")
    assert two["world_size"] == 2 and one["world_size"] == 1
    assert len(two["rng"]) == 2  # every process's RNG state, for an exact resume
    assert two["step"] == one["step"] == 2 * 3
    start = syn.tiny_mlp_net()
    for k, v in one["model"].items():
        torch.testing.assert_close(two["model"][k], v, rtol=0, atol=2e-6)
        assert not torch.allclose(v, start.state_dict()[k])  # trained, not merely equal at init
    # validation counts were summed over both processes' shards: the same top-1 as one process
    assert two["best_top1"] == one["best_top1"]
