"""Which functions of the assignment the student writes, by part of the assignment.

Each exercise is ``(module, name)``: ``module`` relative to the workspace package ``cs231n`` (and to
``cnnarch.scratch``, whose code is the reference), ``name`` a function or ``Class.method``.
"""

PACKAGE = "cs231n"

PARTS = {
    "fc": [
        ("layers", "affine_forward"),
        ("layers", "affine_backward"),
        ("layers", "relu_forward"),
        ("layers", "relu_backward"),
        ("layers", "softmax_loss"),
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
    "dropout": [
        ("layers", "dropout_forward"),
        ("layers", "dropout_backward"),
    ],
    "conv": [
        ("layers", "conv_forward_naive"),
        ("layers", "conv_backward_naive"),
        ("layers", "max_pool_forward_naive"),
        ("layers", "max_pool_backward_naive"),
        ("layers", "spatial_batchnorm_forward"),
        ("layers", "spatial_batchnorm_backward"),
        ("layers", "spatial_groupnorm_forward"),
        ("layers", "spatial_groupnorm_backward"),
        ("classifiers.cnn", "ThreeLayerConvNet.loss"),
    ],
}

EXERCISES = [ex for part in PARTS.values() for ex in part]

# Workspace modules written from the reference with their exercises stubbed (or none), in import order.
COPIED = ["layers", "layer_utils", "optim", "solver", "classifiers.fc_net", "classifiers.cnn"]
# Workspace modules that only re-export ``cnnarch.scratch``'s, so the assignment's imports work.
REEXPORTED = ["fast_layers", "gradient_check", "data_utils", "vis_utils"]
