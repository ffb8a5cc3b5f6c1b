"""One DDP training step after another for every forward code path of the zoo, as ``torchrun`` starts
it (``python -m torch.distributed.run --nproc-per-node 2 ... ddp_families_entry.py OUT``): each process
writes ``OUT/done<RANK>.txt`` with the families it stepped through. One launch for all families: a
torchrun launch per family would cost its agent and two torch imports each (~10-30 s on 2 busy cores).
"""

import sys
from pathlib import Path

import torch
from torch import nn

from cnnarch.train import distributed as D

# one network per forward code path of the zoo, and the input side each accepts (the smallest, or 32)
FAMILIES = {
    "alexnet": ({}, 227),  # grouped convolutions, local response normalisation, dropout
    "zfnet": ({}, 207),
    "vgg11_bn": ({}, 32),
    "googlenet": ({}, 96),  # auxiliary heads in training
    "resnet18": ({}, 32),  # BasicBlock
    "resnext50_32x4d": ({}, 32),  # Bottleneck with grouped convolutions
    "resnet20": ({}, 32),  # CIFAR ResNet, shortcut A
    "plain20": ({}, 32),
    "wrn16_4": ({"drop_prob": 0.3}, 32),  # dropout between the convolutions
    "fractalnet": ({}, 32),  # drop-path: columns left out of a step
    "cifar_fast": ({}, 32),  # frozen whitening layer
}


def _build(name: str, kwargs: dict) -> nn.Module:
    """The zoo's network; FractalNet narrowed (3 columns of 2 blocks, 16-32 channels: the same modules
    and drop-path as fractalnet20's 33.7M parameters). The hidden fully connected layers of AlexNet, ZFNet
    and VGG (16-100M weights each) are frozen so that the all-reduce stays small; forward and backward
    still run through them, and DDP leaves frozen parameters out as the trainer's --freeze does."""
    from cnnarch.models import create_model
    from cnnarch.models.fractalnet import fractalnet

    if name == "fractalnet":
        return fractalnet(3, 2, (16, 32), num_classes=4)
    model = create_model(name, num_classes=4, **kwargs)
    for m in model.modules():
        if isinstance(m, nn.Linear) and m.out_features != 4 and m.weight.numel() > 1_000_000:
            m.weight.requires_grad_(False)
    return model


def family_steps(info, out: Path) -> None:
    from cnnarch.train.evaluate import split_outputs

    done = []
    for name, (kwargs, size) in FAMILIES.items():
        torch.manual_seed(0)
        model = _build(name, kwargs)
        net = D.wrap(model, torch.device("cpu"), info)
        assert isinstance(net, nn.parallel.DistributedDataParallel)
        assert net.find_unused_parameters == (name == "fractalnet"), name
        opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01)
        torch.manual_seed(info.rank)  # other dropout masks and drop-paths per process, as in the trainer
        g = torch.Generator().manual_seed(info.rank)
        for _ in range(2):  # DDP reports a parameter left out of step k in step k + 1
            x, y = torch.randn(2, 3, size, size, generator=g), torch.randint(0, 4, (2,), generator=g)
            logits, aux = split_outputs(net(x))
            loss = nn.functional.cross_entropy(logits, y)
            loss = loss + 0.3 * sum(nn.functional.cross_entropy(a, y) for a in aux)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if name == "googlenet":
            assert len(aux) == 2
        # the processes hold the same weights after the steps (averaged gradients): max = min everywhere
        weights = torch.cat([p.detach().flatten() for p in model.parameters() if p.requires_grad])
        low, high = weights.clone(), weights.clone()
        torch.distributed.all_reduce(low, op=torch.distributed.ReduceOp.MIN)
        torch.distributed.all_reduce(high, op=torch.distributed.ReduceOp.MAX)
        assert torch.equal(low, high), name
        done.append(name)
        del net, model, opt
    (out / f"done{info.rank}.txt").write_text(" ".join(done))


if __name__ == "__main__":
    torch.set_num_threads(1)
    info = D.init_distributed("cpu")
    family_steps(info, Path(sys.argv[1]))
    D.shutdown(info)  # a barrier first: the group is left only once both processes are done with it
