"""Which functions of the assignment the student writes, by part of the assignment.

Each exercise is ``(module, name)``: ``module`` relative to the workspace package ``cs231n`` (and to
``cnnarch.scratch``, whose code is the reference), ``name`` a function or ``Class.method``. The
student writes the whole body, or, where the reference marks a region with ``# >>> exercise`` and
``# <<< exercise`` (the weight initialization in the networks' ``__init__``), that region only.
"""

PACKAGE = "cs231n"

PARTS = {
    "fc": [
        ("layers", "affine_forward"),
        ("layers", "affine_backward"),
        ("layers", "relu_forward"),
        ("layers", "relu_backward"),
        ("layers", "svm_loss"),
        ("layers", "softmax_loss"),
        ("classifiers.fc_net", "TwoLayerNet.__init__"),
        ("classifiers.fc_net", "TwoLayerNet.loss"),
        ("classifiers.fc_net", "FullyConnectedNet.__init__"),
        ("classifiers.fc_net", "FullyConnectedNet.loss"),
        ("optim", "sgd_momentum"),
        ("optim", "rmsprop"),
        ("optim", "adam"),
    ],
    "batchnorm": [
        ("layers", "batchnorm_forward"),
        ("layers", "batchnorm_backward"),
        ("layers", "batchnorm_backward_alt"),
        ("layers", "layernorm_forward"),
        ("layers", "layernorm_backward"),
    ],
    "dropout": [("layers", "dropout_forward"), ("layers", "dropout_backward")],
    "conv": [
        ("layers", "conv_forward_naive"),
        ("layers", "conv_backward_naive"),
        ("layers", "max_pool_forward_naive"),
        ("layers", "max_pool_backward_naive"),
        ("layers", "spatial_batchnorm_forward"),
        ("layers", "spatial_batchnorm_backward"),
        ("layers", "spatial_groupnorm_forward"),
        ("layers", "spatial_groupnorm_backward"),
        ("classifiers.cnn", "ThreeLayerConvNet.__init__"),
        ("classifiers.cnn", "ThreeLayerConvNet.loss"),
    ],
    "pytorch": [
        ("pytorch_nets", "three_layer_convnet"),
        ("pytorch_nets", "ThreeLayerConvNetModule.__init__"),
        ("pytorch_nets", "ThreeLayerConvNetModule.forward"),
        ("pytorch_nets", "make_model"),
    ],
}

EXERCISES = [ex for part in PARTS.values() for ex in part]

# Workspace modules written from the reference with their exercises stubbed (or none), in import order.
# Every module the grader imports is a copy, so that the student's package runs without cnnarch.
COPIED = ["fast_layers", "layers", "layer_utils", "optim", "solver", "gradient_check", "vis_utils"]
COPIED += ["classifiers.fc_net", "classifiers.cnn", "pytorch_nets"]
# Workspace modules copied as they are from cnnarch.assignment (NumPy and Pillow only): the data loader.
STANDALONE = ["data_utils"]
