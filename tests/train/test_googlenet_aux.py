import torch
from torch.nn.functional import cross_entropy

from cnnarch.models import create_model
from cnnarch.train.config import resolve_config
from cnnarch.train.trainer import Trainer


def test_googlenet_trains_with_its_auxiliary_classifiers(tmp_path, syn):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (8, 3, 96, 96), generator=g, dtype=torch.uint8)  # 79x79 is its minimum
    y = torch.arange(8) % 4
    data = syn.bundle(x, y, 4, 4, val=False)
    cfg = resolve_config("googlenet", epochs=1, batch_size=4, output=str(tmp_path / "run"), log_interval=0)
    trainer = Trainer(cfg, data, model=lambda: create_model("googlenet", num_classes=4), log=lambda s: None)
    model = trainer.model
    assert trainer.aux_loss_weight == 0.3 == model.aux_loss_weight

    model.train()
    xb = syn.to_float(x[:4])
    out = model(xb)
    logits, aux2, aux1 = out  # GoogLeNetOutputs in training mode
    loss, main = trainer.loss_of(out, y[:4])
    expected = cross_entropy(logits, y[:4]) + 0.3 * (cross_entropy(aux1, y[:4]) + cross_entropy(aux2, y[:4]))
    torch.testing.assert_close(loss, expected)
    assert main is logits

    before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith(("aux1.", "aux2."))}
    assert before
    trainer.fit()
    after = model.state_dict()
    changed = [k for k, v in before.items() if v.is_floating_point() and not torch.equal(v, after[k])]
    assert any(k.startswith("aux1.") for k in changed) and any(k.startswith("aux2.") for k in changed)
