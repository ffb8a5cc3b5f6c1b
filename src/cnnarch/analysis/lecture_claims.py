"""The lecture's claims as data: one row per sentence with a number in it, in the lecture's order.

A row quotes the lecture once (``quoted``) and names what to compare it with: ``compute`` is a
quantity of a network ("vgg16.params", "alexnet.count:Conv2d": the methods of
:class:`cnnarch.analysis.lecture.Network`) and ``check`` how the two must match. A row without
``compute`` is cited: the lecture repeats a paper (training recipes, competition results); ``paper``
holds the paper's value only where it is not the lecture's. :func:`cnnarch.analysis.lecture.check_lecture`
evaluates the rows.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Claim:
    """One sentence of the lecture with a number in it."""

    section: str
    claim: str
    quoted: str  # the lecture's words: the only place its value is written
    compute: str = ""  # "[network.]quantity[:argument]"; empty: cited from `source`
    check: str = "equal"  # equal | rounds | within N% | above | holds (the quantity decides)
    paper: str = ""  # a cited claim: the paper's value, where it is not the lecture's
    why: str = ""  # may quote the computed {value} and the quantity's notes ({biases:,})
    source: str = ""  # a computed claim: its network unless written here

    @property
    def network(self) -> str:
        """The network (or lecture module) ``compute`` measures; "" for cited claims and arithmetic."""
        head = self.compute.partition(":")[0]
        return head.rpartition(".")[0]


# The lecture's AlexNet list, in English. CONV4's stride has no number in the lecture ("с шагом,
# отступ 1"): "?"; the pools' lines give no padding: 0.
ALEXNET_LIST = """\
CONV1: 96 filters 11x11 stride 4 pad 0
MAX POOL1: 3x3 stride 2
NORM1: normalization
CONV2: 256 filters 5x5 stride 1 pad 2
MAX POOL2: 3x3 stride 2
NORM2: normalization
CONV3: 384 filters 3x3 stride 1 pad 1
CONV4: 384 filters 3x3 stride ? pad 1
CONV5: 256 filters 3x3 stride 1 pad 1
MAX POOL3: 3x3 stride 2
FC6: 4096 neurons
FC7: 4096 neurons
FC8: 1000 neurons
"""

# The lecture's VGG-16 table, verbatim.
VGG16_TABLE = """\
INPUT:  memory: 224*224*3=150K params: 0
CONV3-64:  memory: 224*224*64=3.2M params: (3*3*3)*64 = 1,728
CONV3-64:  memory: 224*224*64=3.2M params: (3*3*64)*64 = 36,864
POOL2:  memory: 112*112*64=800K params: 0
CONV3-128:  memory: 112*112*128=1.6M params: (3*3*64)*128 = 73,728
CONV3-128:  memory: 112*112*128=1.6M params: (3*3*128)*128 = 147,456
POOL2:  memory: 56*56*128=400K params: 0
CONV3-256:  memory: 56*56*256=800K params: (3*3*128)*256 = 294,912
CONV3-256:  memory: 56*56*256=800K params: (3*3*256)*256 = 589,824
CONV3-256:  memory: 56*56*256=800K params: (3*3*256)*256 = 589,824
POOL2:  memory: 28*28*256=200K params: 0
CONV3-512:  memory: 28*28*512=400K params: (3*3*256)*512 = 1,179,648
CONV3-512:  memory: 28*28*512=400K params: (3*3*512)*512 = 2,359,296
CONV3-512:  memory: 28*28*512=400K params: (3*3*512)*512 = 2,359,296
POOL2:  memory: 14*14*512=100K params: 0
CONV3-512:  memory: 14*14*512=100K params: (3*3*512)*512 = 2,359,296
CONV3-512:  memory: 14*14*512=100K params: (3*3*512)*512 = 2,359,296
CONV3-512:  memory: 14*14*512=100K params: (3*3*512)*512 = 2,359,296
POOL2:  memory: 7*7*512=25K params: 0
FC:  memory: 4096 params: 7*7*512*4096 = 102,760,448
FC:  memory: 4096 params: 4096*4096 = 16,777,216
FC:  memory: 1000 params: 4096*1000 = 4,096,000
"""


def _listed(section: str, table: str, quantity: str, numbered: bool) -> list[Claim]:
    """One claim per line of a transcribed table: "LABEL: the lecture's words"."""
    rows = []
    for i, line in enumerate(table.splitlines(), 1):
        label, words = (s.strip() for s in line.split(":", 1))
        key = f"line {i}: {label}" if numbered else label
        rows.append(Claim(section, key, words, f"{quantity}:{i}", "holds"))
    return rows


ALEXNET, VGG, GOOGLENET, INCEPTION, RESNET = "AlexNet", "VGG-16", "GoogLeNet", "Inception", "ResNet"
KRIZHEVSKY, HE = "Krizhevsky et al. 2012, section 5", "He et al. 2016, section 3.4"

# fmt: off
CLAIMS = [
    Claim(ALEXNET, "five convolutional layers", "5", "alexnet.count:Conv2d"),
    Claim(ALEXNET, "three fully connected layers", "3", "alexnet.count:Linear"),
    Claim(ALEXNET, "three max-pooling layers", "3", "alexnet.count:MaxPool2d"),
    Claim(ALEXNET, "two normalization layers", "2", "alexnet.count:LocalResponseNorm"),
    Claim(ALEXNET, "input image", "227x227x3", "alexnet.input_image"),
    *_listed(ALEXNET, ALEXNET_LIST, "alexnet.list_line", numbered=False),
    Claim(ALEXNET, "CONV1 output width (227 - 11) / 4 + 1", "55", "alexnet.conv1_width"),
    Claim(ALEXNET, "CONV1 parameters (11x11x3)x96", "34,848", "alexnet.conv1_weights",
          why="the lecture counts weights only; with the {biases:,} biases the layer has {params:,}"),
    Claim(ALEXNET, "MAX POOL1 parameters", "0", "alexnet.pool1_params"),
    Claim(ALEXNET, "trained on two GPUs (GTX 580, 3 GB): layers split in two groups", "2", "alexnet.grouped",
          "holds", why="the paper's conv2, conv4, conv5 see only the kernels on their own GPU"),
    Claim(ALEXNET, "dropout", "50%", "alexnet.dropout_percent"),
    Claim(ALEXNET, "batch size", "128", why="training recipe", source=KRIZHEVSKY),
    Claim(ALEXNET, "SGD momentum", "0.9", why="training recipe", source=KRIZHEVSKY),
    Claim(ALEXNET, "learning rate, divided by 10 by hand when validation error stops improving", "1e-2",
          why="training recipe", source=KRIZHEVSKY),
    Claim(ALEXNET, "L2 weight decay", "5e-4", why="training recipe", source=KRIZHEVSKY),
    Claim(ALEXNET, "ensemble of 7 CNNs: top-5 error", "18.2% -> 16.4%",
          paper="18.2% -> 15.4% (val), 15.3% (test)",
          why="16.4% is the paper's 5-CNN ensemble; 7 CNNs (two pre-trained on ImageNet Fall 2011) "
          "reach 15.4%",
          source="Krizhevsky et al. 2012, Table 2"),
    Claim(ALEXNET, "ZFNet, ILSVRC 2013: top-5 error", "11.7%",
          why="the ILSVRC 2013 winner, Zeiler's Clarifai; Zeiler & Fergus's own paper reports 14.8% (test) "
          "for its 6-net ensemble", source="ILSVRC 2013 results; Zeiler & Fergus 2014, Table 2"),

    *_listed(VGG, VGG16_TABLE, "vgg16.table_line", numbered=True),
    Claim(VGG, "TOTAL memory (activations per image)", "24M", "vgg16.table_sum", "rounds",
          why="arithmetic slip: the table's own lines sum to {value:,}; the whole forward pass, with the "
          "7x7 adaptive pool's copy, allocates {allocated:,}"),
    Claim(VGG, "TOTAL memory in bytes: 24M * 4 bytes", "~96MB / image", "vgg16.forward_mb", "within 10%",
          why="follows from the 24M slip (24M * 4 B = 96 MB is right for 24M values)"),
    Claim(VGG, "text: memory per image, forward only", "about 100 MB", "vgg16.forward_mb", "within 15%",
          why="the text rounds the table's 96 MB, which rests on the 24M slip"),
    Claim(VGG, "forward + backward memory", "~*2", "vgg16.train_over_forward",
          why="each activation gets a gradient of its size; shown: the computed forward + backward"),
    Claim(VGG, "TOTAL memory, measured: one forward pass of the real network", "~96MB / image",
          "vgg16.measured_forward_mb", "within 10%",
          why="measured peak of the tensors a forward keeps for the backward (CPU, batch 1, PyTorch's "
          "allocator events); the estimate counts {estimate:.0f} MB: in-place ReLUs write into their input, "
          "max pools keep their int64 indices; without autograd each activation is freed once read"),
    Claim(VGG, "forward + backward memory, measured: one training step", "~*2",
          "vgg16.measured_train_over_forward", "within 25%",
          why="measured: beyond the weights' gradients the step holds {ratio:.2f}x the forward's peak, not "
          "2x: the backward frees each saved activation as soon as its gradient is computed, so "
          "activations and their gradients never all live at once"),
    Claim(VGG, "a 5 GB card processes about 50 images at a time (forward only)", "50", "vgg16.fits_5gb",
          "within 10%", why="5e9 B / 96 MB = 52 follows from the 24M slip; with the real {mb:.0f} MB "
          "per image {value} fit"),
    Claim(VGG, "TOTAL params", "138M", "vgg16.params", "rounds",
          why="counting biases; weights alone {weights:,} also round to 138M"),
    Claim(VGG, "VGG16 has 16 layers", "16", "vgg16.depth"),
    Claim(VGG, "VGG19 has 19 layers", "19", "vgg19.depth"),
    Claim(VGG, "no normalization layers", "0", "vgg16.norm_layers"),
    Claim(VGG, "VGG19 works better but uses more memory", "VGG19 > VGG16", "vgg19.better_and_bigger:vgg16",
          "holds", source="networks vgg16, vgg19; torchvision IMAGENET1K_V1 weights' metrics"),
    Claim(VGG, "ILSVRC 2014: 2nd in classification, 1st in localization", "2nd / 1st",
          source="Simonyan & Zisserman 2015, abstract"),
    Claim(VGG, "2014: VGGNet more than twice better than AlexNet (top-5 error)", "> 2x",
          "error_ratio:16.4/7.3", "above",
          why="AlexNet's 16.4% (5 CNNs) vs VGG's ILSVRC 2014 submission 7.3%",
          source="Krizhevsky et al. 2012, Table 2; Simonyan & Zisserman 2015, Table 7"),

    Claim(GOOGLENET, "layers", "22", "googlenet.depth"),
    Claim(GOOGLENET, "no fully connected layers", "0", "googlenet.count:Linear",
          why="the lecture means no large hidden FC layers; the net ends in one linear classifier "
          "({layer_params:,} params)"),
    Claim(GOOGLENET, "parameters", "5M", "googlenet.inference_params", "rounds",
          why="5M is the slide's round figure; the paper's Table 1 sums to about 6.8M"),
    Claim(GOOGLENET, "12 times fewer parameters than AlexNet", "12x", "googlenet.fewer_params_than:alexnet",
          "rounds", source="networks alexnet, googlenet",
          why="the paper's claim (vs AlexNet's 60M) rests on its round figures; the real networks give "
          "{value:.1f}x"),
    Claim(GOOGLENET, "stem network: 3 conv layers and 2 pooling layers", "3 conv, 2 pool", "googlenet.stem",
          why="counting layers with output before inception3a; the stem also has 2 LRN layers"),
    Claim(GOOGLENET, "auxiliary classifier outputs", "2", "googlenet.aux_heads",
          why="training only: the forward in eval mode skips them"),

    Claim(INCEPTION, "naive module: branch outputs (1x1 128, 3x3 192, 5x5 96, 3x3 pool)",
          "28x28x128, 28x28x192, 28x28x96, 28x28x256", "inception_naive.branch_outputs"),
    Claim(INCEPTION, "naive module: output after concatenation", "28x28x672", "inception_naive.output",
          why="the pool branch keeps all 256 channels, so depth only grows: 256 -> 672"),
    Claim(INCEPTION, "naive module: operations", "854M", "inception_naive.macs", "rounds",
          why="the lecture's 'operations' are the convolutions' multiply-accumulates"),
    Claim(INCEPTION, "32 1x1 filters reduce depth (slide: 56x56x64 input)", "56x56x32", "one_by_one_output",
          source="module: Conv2d(64, 32, 1) on 56x56x64"),
    Claim(INCEPTION, "module with 1x1 reductions: operations", "358M", "inception_reduced.macs", "rounds",
          why="arithmetic slip on the slide: its own six terms (28*28*64*1*1*256, ...) sum to {value:,}, "
          "the computed count"),
    Claim(INCEPTION, "module with 1x1 reductions: output", "28x28x480", "inception_reduced.output"),
    Claim(INCEPTION, "reductions cut the cost almost 2.5 times", "~2.5x",
          "inception_naive.macs_over:inception_reduced", "within 10%",
          why="854M / 358M = 2.39 follows from the slide's slip; the real saving is larger"),
    Claim(INCEPTION, "the zoo's GoogLeNet Inception class, same widths", "as the module with 1x1 reductions",
          "googlenet.zoo_inception_macs", "holds", source="cnnarch.models.googlenet.Inception"),

    Claim(RESNET, "ResNet-152 layers", "152", "resnet152.depth"),
    Claim(RESNET, "residual block: two 3x3 conv layers (resnet34)", "3x3, 3x3", "resnet34.block_kernels"),
    Claim(RESNET, "residual block: two 3x3 conv layers (resnet152)", "3x3, 3x3", "resnet152.block_kernels",
          why="ResNet-50/101/152 use bottleneck blocks: 1x1 reduce, 3x3, 1x1 expand"),
    Claim(RESNET, "filters double, size halves (stride 2) stage by stage", "x2 / /2", "resnet34.stages",
          "holds"),
    Claim(RESNET, "one extra conv layer at the start", "1", "resnet152.stem_convs"),
    Claim(RESNET, "no FC layers but the output layer", "1", "resnet152.count:Linear"),
    Claim(RESNET, "batch norm after every conv layer", "every conv", "resnet152.bn_per_conv", "holds"),
    Claim(RESNET, "no dropout", "0", "resnet152.dropout_percent"),
    Claim(RESNET, "SGD momentum", "0.9", why="training recipe", source=HE),
    Claim(RESNET, "learning rate, divided by 10 when the error plateaus", "0.1", why="training recipe",
          source=HE),
    Claim(RESNET, "mini-batch size", "256", why="training recipe", source=HE),
    Claim(RESNET, "weight decay", "1e-5", paper="1e-4", source=HE,
          why="slip in the lecture (and CS231n's slide): the paper uses 1e-4"),
    Claim(RESNET, "ILSVRC 2015 top-5 error", "3.57%", why="ensemble, test set",
          source="He et al. 2016, Table 5"),
    Claim(RESNET, "almost twice as good as GoogLeNet", "~2x", "error_ratio:6.67/3.57", "within 15%",
          why="GoogLeNet's ILSVRC 2014 winning 6.67% top-5 vs ResNet's 3.57%",
          source="Szegedy et al. 2015, Table 2; He et al. 2016, Table 5"),
]
# fmt: on
