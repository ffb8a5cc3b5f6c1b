"""FractalNet against the expansion rule written out by hand, and drop-path's promises."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from cnnarch.models import create_model
from cnnarch.models.fractalnet import ConvUnit, Join, fractalnet


def _net(num_columns, channels=(4, 8), **kwargs):
    kwargs = {"drop_prob": 0.0, "drop_path_local": 0.0, "drop_path_global": 0.0, **kwargs}
    return fractalnet(num_columns, len(channels), channels, num_classes=5, **kwargs)


def _head(model, x):
    return model.fc(torch.flatten(model.avgpool(x), 1))


def _mean(*ts):
    return sum(ts) / len(ts)


def test_two_columns_are_the_mean_join_of_a_conv_and_two_convs():
    # f_2(z) = join(f_1(f_1(z)), conv(z)), f_1 = conv; each block then pools
    model = _net(2).eval()
    x = torch.randn(2, 3, 8, 8)
    z = x
    for block in model.blocks:
        f = block.fractal
        z = F.max_pool2d(_mean(f.conv(z), f.second.conv(f.first.conv(z))), 2)
    torch.testing.assert_close(model(x), _head(model, z), rtol=1e-5, atol=1e-6)


def test_three_columns_join_at_depth_2_and_4_with_one_mean_over_all_columns():
    # f_3(z) = join(f_2(f_2(z)), conv(z)), with the nested levels' last joins merged (the paper's Fig. 1)
    model = _net(3, channels=(4,)).eval()
    f = model.block1.fractal
    x = torch.randn(2, 3, 8, 8)
    j = _mean(f.first.conv(x), f.first.second.conv(f.first.first.conv(x)))
    out = _mean(f.conv(x), f.second.conv(j), f.second.second.conv(f.second.first.conv(j)))
    torch.testing.assert_close(model(x), _head(model, F.max_pool2d(out, 2)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("column", [1, 2, 3])
def test_single_column_is_that_columns_chain_of_convolutions(column):
    model = _net(3).eval()
    x = torch.randn(2, 3, 8, 8)
    z = x
    for block in model.blocks:
        units = block.column_units(column)
        assert len(units) == len(set(units)) == 2 ** (column - 1)
        for unit in units:
            z = unit(z)
        z = F.max_pool2d(z, 2)
    expected = _head(model, z)
    torch.testing.assert_close(model(x, column=column), expected, rtol=1e-5, atol=1e-6)
    model.column = column  # the attribute selects the same path for callers that only pass x
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-6)


def test_columns_partition_the_units():
    block = _net(4, channels=(4,)).block1
    units = [u for c in range(1, 5) for u in block.column_units(c)]
    assert len(units) == 1 + 2 + 4 + 8
    assert {id(u) for u in units} == {id(m) for m in block.modules() if isinstance(m, ConvUnit)}


def _record_units(model):
    ran = []
    for b, block in enumerate(model.blocks):
        for c in range(1, model.num_columns + 1):
            for unit in block.column_units(c):
                unit.register_forward_hook(lambda m, i, o, key=(b, c): ran.append(key))
    return ran


def test_global_drop_path_trains_exactly_one_column_through_the_whole_net():
    model = _net(3, drop_path_global=1.0).train()
    ran = _record_units(model)
    x = torch.randn(4, 3, 8, 8)
    seen = set()
    for _ in range(12):
        ran.clear()
        y = model(x)
        columns = {c for _, c in ran}
        assert len(columns) == 1, f"global drop-path ran columns {columns}"
        (column,) = columns
        assert len(ran) == len(model.blocks) * 2 ** (column - 1)  # every unit of that column, each block
        seen.add(column)
        torch.testing.assert_close(y, model(x, column=column))  # no dropout: the same computation
    assert seen == {1, 2, 3}  # the column is drawn per mini-batch


def test_local_drop_path_keeps_at_least_one_input_at_every_join():
    model = _net(3, drop_path_local=0.6).train()
    calls = []
    for m in model.modules():
        if isinstance(m, Join):
            m.register_forward_hook(lambda m, args, out: calls.append(([t.clone() for t in args[0]], out)))
    x = torch.randn(4, 3, 8, 8)
    kept_sizes = []
    for _ in range(10):
        model(x)
    assert len(calls) == 10 * len(model.blocks) * 2  # C=3: joins at depths 2 and 4 of every block
    assert {len(inputs) for inputs, _ in calls} == {2, 3}
    for inputs, out in calls:
        matches = [
            len(subset)
            for r in range(1, len(inputs) + 1)
            for subset in itertools.combinations(inputs, r)
            if torch.allclose(out, _mean(*subset), atol=1e-6)
        ]
        assert matches, "a join's output is not the mean of any non-empty subset of its inputs"
        kept_sizes.append(min(matches))
    assert min(kept_sizes) < 3 and max(kept_sizes) > 1  # paths were dropped, and not always all but one


def test_local_drop_path_at_rate_one_still_keeps_one_input():
    join = Join()
    inputs = [torch.full((1, 2), float(i)) for i in range(4)]
    for _ in range(20):
        out = join(inputs, drop_prob=1.0)
        assert out.flatten()[0].item() in {0.0, 1.0, 2.0, 3.0}


def test_training_mixes_global_and_local_drop_path_per_mini_batch():
    model = _net(3, drop_path_global=0.5, drop_path_local=0.15).train()
    ran = _record_units(model)
    kinds = set()
    for _ in range(16):
        ran.clear()
        model(torch.randn(2, 3, 8, 8))
        kinds.add("global" if len({c for _, c in ran}) == 1 else "local")
    assert kinds == {"global", "local"}


def test_eval_is_deterministic_with_dropout_and_drop_path_configured():
    model = _net(3, drop_prob=0.3, drop_path_local=0.5, drop_path_global=0.5)
    x = torch.randn(2, 3, 8, 8)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)


def test_dropout_sits_in_every_unit_with_the_block_rate():
    model = fractalnet(2, 5, (4, 4, 4, 4, 4))
    for block, rate in zip(model.blocks, (0.0, 0.1, 0.2, 0.3, 0.4), strict=True):
        for unit in block.column_units(1) + block.column_units(2):
            assert isinstance(unit[1], torch.nn.Dropout) and unit[1].p == pytest.approx(rate)


def _conv_bn(cin, cout):
    return 9 * cin * cout + 2 * cout


def _fractal_params(num_columns, channels, num_classes, in_channels=3):
    """Each of the C columns starts with one unit from the block's input; the other 2^C - 1 - C units
    map the block's width to itself; a linear layer ends the network."""
    total = 0
    for width in channels:
        first = num_columns * _conv_bn(in_channels, width)
        rest = (2**num_columns - 1 - num_columns) * _conv_bn(width, width)
        total += first + rest
        in_channels = width
    return total + in_channels * num_classes + num_classes


def test_cifar_presets_parameter_counts_follow_the_layer_arithmetic():
    with torch.device("meta"):
        f20, f40 = create_model("fractalnet20"), create_model("fractalnet40", num_classes=100)
    count20 = sum(p.numel() for p in f20.parameters())
    assert count20 == _fractal_params(3, (64, 128, 256, 512, 512), 10)
    # the paper's Table 1 prints 38.6M for its 20-layer net; the text's architecture has 33.7M
    assert round(count20 / 1e6, 1) == 33.7
    assert sum(p.numel() for p in f40.parameters()) == _fractal_params(4, (64, 128, 256, 512, 512), 100)
    assert [len(f20.block1.column_units(c)) for c in (1, 2, 3)] == [1, 2, 4]  # 5 blocks x 4 = 20 layers


def test_imagenet_preset_has_resnet34_ends_and_four_eight_layer_blocks():
    with torch.device("meta"):
        model = create_model("fractalnet34")
        y = model(torch.empty(2, 3, 224, 224))
    assert y.shape == (2, 1000)
    assert len(model.blocks) == 4 and all(len(b.column_units(4)) == 8 for b in model.blocks)
    stem = 3 * 64 * 49 + 2 * 64
    expected = stem + _fractal_params(4, (64, 128, 256, 512), 1000, in_channels=64)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="column"):
        _net(3)(torch.randn(1, 3, 8, 8), column=4)
    with pytest.raises(ValueError, match="column"):
        _net(3, column=0)
    with pytest.raises(ValueError, match="num_blocks"):
        fractalnet(3, 5, (64, 128))


def test_a_global_drop_path_step_trains_only_the_chosen_column():
    model = _net(3, drop_path_global=1.0).train()
    ran = _record_units(model)
    model(torch.randn(4, 3, 8, 8)).sum().backward()
    (column,) = {c for _, c in ran}
    trained = {id(p) for p in model.parameters() if p.grad is not None}
    expected = {id(p) for block in model.blocks for u in block.column_units(column) for p in u.parameters()}
    assert trained == expected | {id(model.fc.weight), id(model.fc.bias)}
