"""A trained network in use: load it from any weight source, classify image files, export it.

Each image is preprocessed exactly as its weights say (:class:`cnnarch.models.weights.WeightsMeta`):
converted to the network's channel count, its shorter side resized to ``resize``, centre-cropped to
``crop`` (torchvision's ``Resize`` and ``CenterCrop``), scaled to ``[0, 1]`` and normalised with the
weights' ``mean`` and ``std``. Weights without that metadata (a bare state_dict) get the preprocessing
the registry declares for the network (``get_model_entry(name).preprocessing``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch import nn

from cnnarch.data.folder import IMG_EXTENSIONS
from cnnarch.models import create_model, first_conv
from cnnarch.models.weights import WeightsMeta
from cnnarch.train.device import Precision


def load_model(
    checkpoint: str | os.PathLike | None = None,
    model: str | None = None,
    weights: str | os.PathLike | None = None,
    num_classes: int | None = None,
) -> nn.Module:
    """A network in eval mode with ``weights_meta`` filled in: from a cnnarch checkpoint (``checkpoint``;
    the network's name is stored in it) or from ``model`` and ``weights`` (any source
    :func:`cnnarch.models.create_model` accepts)."""
    if (checkpoint is None) == (model is None):
        raise ValueError("give either a checkpoint, or a model name with --weights")
    if checkpoint is not None:
        from cnnarch.train.checkpoint import load_checkpoint

        model = load_checkpoint(checkpoint)["model_name"]
        weights = checkpoint
    if weights is None:
        raise ValueError(f"{model} needs weights (a weight name, a file or a URL)")
    return create_model(model, weights=weights, num_classes=num_classes).eval()


def preprocess(image: Image.Image, meta: WeightsMeta, channels: int = 3) -> torch.Tensor:
    """One image (any size, any PIL mode) as the network's normalised ``(C, crop, crop)`` input."""
    from torchvision.transforms.v2 import functional as TF

    image = image.convert("L" if channels == 1 else "RGB")
    if meta.resize:  # on the PIL image, as torchvision's weight transforms resize a PIL input
        image = TF.resize(image, [meta.resize])
    if meta.crop:
        image = TF.center_crop(image, [meta.crop])
    x = TF.to_dtype(TF.to_image(image), torch.float32, scale=True)
    return TF.normalize(x, list(meta.mean[:channels]), list(meta.std[:channels]))


def weights_transform(meta: WeightsMeta, ten_crop_padding: int | None = None):
    """The batch form of :func:`preprocess`, for ``uint8`` batches of decoded images (``cnnarch eval``).
    With ``ten_crop_padding``: instead of the centre crop, AlexNet's ten crops (four corners, centre,
    and their mirror images) of the images padded by that many zero pixels, ``(N, 10, C, crop, crop)``."""
    from torchvision.transforms.v2 import functional as TF

    from cnnarch.data.augment import ten_crop

    def transform(x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 255 if x.dtype == torch.uint8 else x
        if meta.resize and min(x.shape[-2:]) != meta.resize:
            x = TF.resize(x, [meta.resize], antialias=True)
        if ten_crop_padding is not None:
            x = ten_crop(torch.nn.functional.pad(x, (ten_crop_padding,) * 4), meta.crop)
        elif meta.crop:
            x = TF.center_crop(x, [meta.crop])
        c = x.shape[-3]
        return TF.normalize(x, list(meta.mean[:c]), list(meta.std[:c]))

    return transform


def image_files(paths: list[str]) -> list[Path]:
    """The files named, and the image files (by extension) below each directory named, sorted."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.name.lower().endswith(IMG_EXTENSIONS))
        elif p.exists():
            out.append(p)
        elif p.is_symlink():
            raise FileNotFoundError(f"{p}: a symbolic link that leads nowhere (a loop, or a missing target)")
        else:
            raise FileNotFoundError(f"{p}: no such file or directory")
    return out


@dataclass(frozen=True)
class Prediction:
    path: str
    classes: tuple[str, ...] = ()
    probs: tuple[float, ...] = ()
    error: str | None = None


def in_channels(net: nn.Module) -> int:
    return first_conv(net).in_channels


@torch.no_grad()
def predict(
    net: nn.Module, files: list[Path], topk: int = 5, batch_size: int = 32, precision: Precision | None = None
) -> list[Prediction]:
    """Top-``topk`` classes and probabilities for each file, at ``precision`` (None: fp32; bf16 also
    turns ``net`` channels-last); a file that is not an image gets ``error``."""
    meta, channels = net.weights_meta, in_channels(net)
    precision = precision or Precision(False, "default")
    precision.layout(net)
    k = min(topk, meta.num_classes)
    results: dict[int, Prediction] = {}
    ready: list[tuple[int, torch.Tensor]] = []

    def flush():
        if not ready:
            return
        with precision.autocast("cpu"):
            logits = net(precision.layout(torch.stack([x for _, x in ready])))
        probs = logits.float().softmax(1)
        top = probs.topk(k, dim=1)
        for (i, _), p, idx in zip(ready, top.values.tolist(), top.indices.tolist(), strict=True):
            results[i] = Prediction(str(files[i]), tuple(meta.class_name(j) for j in idx), tuple(p))
        ready.clear()

    for i, f in enumerate(files):
        try:
            with Image.open(f) as im:
                ready.append((i, preprocess(im, meta, channels)))
        except (UnidentifiedImageError, OSError) as e:
            results[i] = Prediction(str(f), error=f"not an image ({type(e).__name__}: {e})")
        except Image.DecompressionBombError as e:  # its pixels would fill the memory: refused unread
            results[i] = Prediction(str(f), error=f"refused: {e}")
        if len(ready) == batch_size:
            flush()
    flush()
    return [results[i] for i in range(len(files))]


def export(
    net: nn.Module, fmt: str, out: str | os.PathLike, input_shape: tuple[int, int, int], optimize: bool = True
) -> None:
    """Write ``net`` as ONNX (torch's ``torch.export``-based exporter; the batch axis stays dynamic;
    ``optimize`` runs the exporter's graph optimizer, which folds constants and fuses nodes),
    TorchScript (``torch.jit.trace``), for an input of ``input_shape`` (C, H, W), or safetensors (the
    weights with their ``weights_meta`` in the header: how cnnarch ships trained weights)."""
    net = net.eval()
    if fmt == "safetensors":
        from cnnarch.models.weights import save_weights

        return save_weights(net, net.weights_meta, out)
    x = torch.randn(2, *input_shape)
    if fmt == "onnx":
        batch = torch.export.Dim("batch", min=1, max=4096)
        program = torch.onnx.export(
            net,
            (x,),
            dynamo=True,
            input_names=["images"],
            output_names=["logits"],
            dynamic_shapes=({0: batch},),
            optimize=optimize,
            verbose=False,
        )
        program.save(str(out))
    elif fmt == "torchscript":
        with torch.no_grad():
            torch.jit.trace(net, x).save(str(out))
    else:
        raise ValueError(f"--to must be onnx, torchscript or safetensors, got {fmt!r}")
