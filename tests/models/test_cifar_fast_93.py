import torch

from cnnarch.models import create_model, list_models


def test_cifar_fast_93_is_airbench93s_network_written_out():
    assert {"cifar_fast", "cifar_fast_93"} <= set(list_models("cifar_fast*"))
    m = create_model("cifar_fast_93")
    # airbench93: widths block1/2/3 = 64/128/128, the rest as the 94 % net. Whitening 3*24*2*2 + 24;
    # 3x3 convs 24->64->64, 64->128->128, 128->128->128; BN shifts (no scales) 64+64+4*128; classifier 128*10
    convs = 9 * (24 * 64 + 64 * 64 + 64 * 128 + 128 * 128 + 128 * 128 + 128 * 128)
    want = 3 * 24 * 4 + 24 + convs + (2 * 64 + 4 * 128) + 1280
    assert sum(p.numel() for p in m.parameters()) == want == 569_016
    assert [m.layer1.conv2.out_channels, m.layer2.conv2.out_channels, m.layer3.conv2.out_channels] == [
        64,
        128,
        128,
    ]
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert create_model("cifar_fast_93", num_classes=7)(torch.randn(1, 3, 32, 32)).shape == (1, 7)
