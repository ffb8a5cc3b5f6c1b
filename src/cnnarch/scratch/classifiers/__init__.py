"""Classifiers of CS231n assignment 2: ``fc_net`` (TwoLayerNet, FullyConnectedNet), ``cnn``
(ThreeLayerConvNet)."""
