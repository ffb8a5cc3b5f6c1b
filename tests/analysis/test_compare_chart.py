"""The accuracy-vs-operations chart: top-1 and top-5 on separate panels, labels that do not overlap."""

import itertools

import matplotlib.pyplot as plt
import pytest

from cnnarch.analysis.compare import Row, chart


def row(name, gmacs, params_m, top1, top5):
    return Row(name, "3x224x224", int(params_m * 1e6), gmacs, 0.0, 1, top1, top5, "test")


@pytest.fixture
def fig():
    rows = [  # crowded on purpose: five networks within 0.6 GMACs and 1.5 points
        row("alexnet", 0.7, 61, 40.7, 18.2),
        row("googlenet", 1.6, 7, None, 10.07),
        row("a", 1.8, 12, 30.2, 10.9),
        row("b", 2.0, 20, 29.8, 10.5),
        row("c", 2.2, 30, 30.6, 10.2),
        row("d", 2.3, 5, 29.5, 10.0),
        row("vgg16", 15.5, 138, 25.6, 8.1),
        row("cifar_only", 0.1, 1, None, None),
    ]
    f = chart(rows)
    yield f
    plt.close(f)


def test_top1_and_top5_on_separate_panels(fig):
    top1, top5 = fig.axes
    assert "top-1" in top1.get_title() and "top-5" in top5.get_title()

    def labelled(ax):
        return {t.get_text().split()[0] for t in ax.texts}

    assert labelled(top1) == {"alexnet", "a", "b", "c", "d", "vgg16"}  # no top-1 published for GoogLeNet
    assert labelled(top5) == {"alexnet", "googlenet", "a", "b", "c", "d", "vgg16"}
    # the y axes hold accuracies, 100 - error, each on its own scale
    (lo1, hi1), (lo5, hi5) = top1.get_ylim(), top5.get_ylim()
    assert lo1 < 100 - 40.7 and hi1 > 100 - 25.6 and hi1 < 100 - 8.1
    assert lo5 < 100 - 18.2 and hi5 > 100 - 8.1


def test_labels_do_not_overlap_each_other_or_leave_the_panel(fig):
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        boxes = [t.get_window_extent(renderer) for t in ax.texts]
        frame = ax.get_window_extent(renderer)
        for a, b in itertools.combinations(boxes, 2):
            assert not a.overlaps(b)
        for b in boxes:
            assert frame.contains(b.x0, b.y0) and frame.contains(b.x1, b.y1)
