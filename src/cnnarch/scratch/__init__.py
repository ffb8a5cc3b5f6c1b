"""cnnarch.scratch: a NumPy deep learning engine with the API of CS231n assignment 2 (2019 edition).

Modules: ``layers`` (forward/backward pairs), ``fast_layers`` (strided-view convolution and pooling),
``layer_utils`` (sandwich layers), ``optim`` (update rules), ``solver`` (``Solver``), ``classifiers``
(``fc_net``, ``cnn``), ``gradient_check``, ``data`` (CIFAR-10 splits; ``data_utils`` under the
assignment's names), ``vis_utils`` (image grids) and ``modules`` (residual block, Inception module, VGG
stack and a ``Sequential`` model, beyond the assignment).
"""
