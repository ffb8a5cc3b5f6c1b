import pytest

from cnnarch.experiments import Context


@pytest.fixture(autouse=True)
def _no_trainer_curves(monkeypatch):
    """The trainer redraws each run's curves.png after every epoch (its own tests cover that); the
    experiments draw their own figures, which these tests check. Saves most of the tests' time."""
    monkeypatch.setattr("cnnarch.train.trainer.plot_curves", lambda *a, **k: None)


@pytest.fixture
def tiny(cifar_jpeg_root, tmp_path):
    """A Context factory: a few dozen CIFAR-10 images, the CPU, silent."""

    def make(name, budget, output=None, **kw):
        kw.setdefault("limit_train", 32)
        kw.setdefault("limit_val", 16)
        kw.setdefault("log", lambda s: None)
        return Context(
            name=name, output=output or tmp_path / name, budget=budget, data=str(cifar_jpeg_root),
            device="cpu", command=f"test {name}", **kw,
        )  # fmt: skip

    return make
