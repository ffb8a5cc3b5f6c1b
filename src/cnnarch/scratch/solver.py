"""The ``Solver`` of CS231n assignment 2: minibatch training of any model with ``params`` and
``loss(X, y=None)`` by one of the update rules in ``cnnarch.scratch.optim``.

Example::

    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 1e-3},
                    lr_decay=0.95, num_epochs=10, batch_size=100, print_every=100)
    solver.train()
    solver.best_val_acc, solver.loss_history, solver.train_acc_history, solver.val_acc_history

``data`` holds 'X_train', 'y_train', 'X_val', 'y_val'. Minibatches are drawn with replacement from
NumPy's global generator, as in the assignment, so ``np.random.seed`` makes a run repeat exactly. After
``train()`` the model holds ``best_params``, the weights with the best validation accuracy.

Deliberate differences from the assignment's starter code:
- a non-finite loss stops training with ``FloatingPointError`` naming the epoch and iteration;
- checkpoints are written to a temporary file and renamed, so a crash never leaves a truncated one;
  ``Solver.load_checkpoint(path)`` reads one back;
- ``best_params`` are copies, so later updates cannot change them.
"""

import os
import pickle

import numpy as np

from cnnarch.scratch import optim

_RULES = ("sgd", "sgd_momentum", "rmsprop", "adam")
_KWARGS = {
    "update_rule": "sgd",
    "optim_config": None,
    "lr_decay": 1.0,
    "batch_size": 100,
    "num_epochs": 10,
    "num_train_samples": 1000,
    "num_val_samples": None,
    "checkpoint_name": None,
    "print_every": 10,
    "verbose": True,
}


class Solver:
    """Trains ``model`` on ``data``.

    Keyword arguments (the assignment's): update_rule ('sgd'), optim_config ({} ; e.g. learning_rate),
    lr_decay (1.0, applied to every learning rate after each epoch), batch_size (100), num_epochs (10),
    num_train_samples (1000 training images used to measure training accuracy; None for all),
    num_val_samples (None: all), checkpoint_name (None; else '<name>_epoch_<k>.pkl' after each epoch),
    print_every (10 iterations), verbose (True).
    """

    def __init__(self, model, data, **kwargs):
        unknown = sorted(set(kwargs) - set(_KWARGS))
        if unknown:
            raise ValueError(
                f"Unrecognized arguments {', '.join(unknown)}; Solver accepts {', '.join(_KWARGS)}"
            )
        for key in ("X_train", "y_train", "X_val", "y_val"):
            if key not in data:
                raise ValueError(f"data has no '{key}'; Solver needs X_train, y_train, X_val, y_val")
        self.model = model
        self.X_train, self.y_train = data["X_train"], data["y_train"]
        self.X_val, self.y_val = data["X_val"], data["y_val"]
        opts = {**_KWARGS, **kwargs}
        self.update_rule = opts["update_rule"]
        self.optim_config = dict(opts["optim_config"] or {})
        self.lr_decay = opts["lr_decay"]
        self.batch_size = opts["batch_size"]
        self.num_epochs = opts["num_epochs"]
        self.num_train_samples = opts["num_train_samples"]
        self.num_val_samples = opts["num_val_samples"]
        self.checkpoint_name = opts["checkpoint_name"]
        self.print_every = opts["print_every"]
        self.verbose = opts["verbose"]

        if self.update_rule not in _RULES:
            raise ValueError(f'Invalid update_rule "{self.update_rule}"; choose one of {", ".join(_RULES)}')
        self.update_rule = getattr(optim, self.update_rule)
        self._reset()

    def _reset(self):
        """Bookkeeping; the assignment's Solver calls this from its constructor too."""
        self.epoch = 0
        self.best_val_acc = 0
        self.best_params = {}
        self.loss_history = []
        self.train_acc_history = []
        self.val_acc_history = []
        self.optim_configs = {p: dict(self.optim_config) for p in self.model.params}

    def _step(self):
        """One gradient update on a random minibatch."""
        num_train = self.X_train.shape[0]
        batch_mask = np.random.choice(num_train, self.batch_size)
        loss, grads = self.model.loss(self.X_train[batch_mask], self.y_train[batch_mask])
        self.loss_history.append(loss)
        for p, w in self.model.params.items():
            next_w, next_config = self.update_rule(w, grads[p], self.optim_configs[p])
            self.model.params[p] = next_w
            self.optim_configs[p] = next_config

    def _save_checkpoint(self):
        if self.checkpoint_name is None:
            return
        checkpoint = {
            "model": self.model,
            "update_rule": self.update_rule,
            "lr_decay": self.lr_decay,
            "optim_config": self.optim_config,
            "optim_configs": self.optim_configs,
            "batch_size": self.batch_size,
            "num_train_samples": self.num_train_samples,
            "num_val_samples": self.num_val_samples,
            "epoch": self.epoch,
            "loss_history": self.loss_history,
            "train_acc_history": self.train_acc_history,
            "val_acc_history": self.val_acc_history,
        }
        filename = f"{self.checkpoint_name}_epoch_{self.epoch}.pkl"
        if self.verbose:
            print(f'Saving checkpoint to "{filename}"')
        tmp = f"{filename}.tmp"
        with open(tmp, "wb") as f:
            pickle.dump(checkpoint, f)
        os.replace(tmp, filename)

    @staticmethod
    def load_checkpoint(path):
        """Read a checkpoint written by ``checkpoint_name``; returns its dict (the pickled model in
        'model'). Only load checkpoints you wrote yourself: pickle runs code."""
        with open(path, "rb") as f:
            return pickle.load(f)

    def check_accuracy(self, X, y, num_samples=None, batch_size=100):
        """Fraction of ``X`` classified as ``y`` (on a random subset of ``num_samples`` if given)."""
        N = X.shape[0]
        if num_samples is not None and N > num_samples:
            mask = np.random.choice(N, num_samples)
            N, X, y = num_samples, X[mask], y[mask]
        y_pred = []
        for start in range(0, N, batch_size):
            scores = self.model.loss(X[start : start + batch_size])
            y_pred.append(np.argmax(scores, axis=1))
        return float(np.mean(np.concatenate(y_pred) == y))

    def train(self):
        """Run ``num_epochs`` epochs of ``max(N // batch_size, 1)`` iterations each."""
        num_train = self.X_train.shape[0]
        iterations_per_epoch = max(num_train // self.batch_size, 1)
        num_iterations = self.num_epochs * iterations_per_epoch
        for t in range(num_iterations):
            self._step()
            loss = self.loss_history[-1]
            if not np.isfinite(loss):
                raise FloatingPointError(
                    f"loss became {loss} at epoch {self.epoch + 1}, iteration {t + 1}/{num_iterations}; "
                    "lower the learning rate or the weight scale"
                )
            if self.verbose and t % self.print_every == 0:
                print(f"(Iteration {t + 1} / {num_iterations}) loss: {loss:f}")

            epoch_end = (t + 1) % iterations_per_epoch == 0
            if epoch_end:
                self.epoch += 1
                for config in self.optim_configs.values():
                    config["learning_rate"] *= self.lr_decay

            if t == 0 or t == num_iterations - 1 or epoch_end:
                train_acc = self.check_accuracy(
                    self.X_train, self.y_train, num_samples=self.num_train_samples
                )
                val_acc = self.check_accuracy(self.X_val, self.y_val, num_samples=self.num_val_samples)
                self.train_acc_history.append(train_acc)
                self.val_acc_history.append(val_acc)
                self._save_checkpoint()
                if self.verbose:
                    epoch = f"(Epoch {self.epoch} / {self.num_epochs})"
                    print(f"{epoch} train acc: {train_acc:f}; val_acc: {val_acc:f}")
                if val_acc > self.best_val_acc:
                    self.best_val_acc = val_acc
                    self.best_params = {k: v.copy() for k, v in self.model.params.items()}
        self.model.params = self.best_params
