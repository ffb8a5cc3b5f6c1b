"""Trained weights for the zoo: by torchvision's weight names, from a file or URL, or shipped with cnnarch.

``create_model(name, weights=...)`` (and ``pretrained=True``) accepts a torchvision weight name
(``"IMAGENET1K_V1"``, ``"DEFAULT"``) for the torchvision twins, a name shipped inside the package
(``"cifar10"``: ``weights_data/NAME-cifar10.safetensors``), or a local file or a URL in any of the forms
docs/use.md lists ("Weights by name, file or URL").

Every set of weights carries a :class:`WeightsMeta`: class names, the preprocessing its network expects
(resize, centre crop, mean, std) and where it came from. Files loaded with ``torch.load`` use
``weights_only=True``. Every set is checked on load: tensors all finite, class names as many as the
classes, and (in :func:`build_with_weights`) shapes that fit the network; a failed check is an
:class:`~cnnarch.errors.InputError` naming the file.

torchvision's GoogLeNet weights expect ``transform_input=True``, a rescaling that cnnarch's GoogLeNet does
not have; the same rescaling is expressed here as the preprocessing ``mean = std = 0.5`` applied to
``[0, 1]`` pixels, which gives identical logits.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import torch
from torch import nn

from cnnarch.data.base import safe_torch_load
from cnnarch.errors import InputError
from cnnarch.models._registry import classifiers, get_model_entry

SHIPPED_DIR = Path(__file__).with_name("weights_data")
# torch.hub's convention NAME-<first hex digits of the file's sha256>.EXT, with at least 8 digits so
# that a name such as "net-1.pt" is not read as a hash
HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,})\.")

# cnnarch name -> torchvision builder name, for the networks whose state_dicts load unchanged
TORCHVISION_TWINS = {
    "alexnet_tv": "alexnet",
    "googlenet_tv": "googlenet",
    **{n: n for n in ("vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn")},
    **{n: n for n in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")},
    **{n: n for n in ("wide_resnet50_2", "wide_resnet101_2")},
    **{n: n for n in ("resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d")},
}


@dataclass(frozen=True)
class WeightsMeta:
    """What a set of weights needs and says: ``resize`` is the shorter side an image is resized to,
    ``crop`` the centre crop taken from it; ``mean``/``std`` normalise ``[0, 1]`` pixels. What the
    weights do not say (None) is the network's declared preprocessing (:func:`with_preprocessing`)."""

    num_classes: int
    classes: tuple[str, ...] = ()
    resize: int | None = None
    crop: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    source: str = ""
    model: str | None = None
    extra: dict = field(default_factory=dict)

    def class_name(self, i: int) -> str:
        return self.classes[i] if i < len(self.classes) else str(i)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WeightsMeta:
        d = json.loads(text)
        for k in ("classes", "mean", "std"):
            d[k] = None if d[k] is None else tuple(d[k])
        return cls(**d)


@dataclass(frozen=True)
class Weights:
    state_dict: dict
    meta: WeightsMeta


def available_weights(name: str) -> list[str]:
    """The weight names ``name`` has: torchvision's for its twins, then those shipped with cnnarch."""
    names = []
    if name in TORCHVISION_TWINS:
        from torchvision.models import get_model_weights

        names += list(get_model_weights(TORCHVISION_TWINS[name]).__members__)
    names += sorted(p.name.split(".")[0].split("-", 1)[1] for p in SHIPPED_DIR.glob(f"{name}-*.safetensors"))
    return names


def models_with_weights() -> dict[str, list[str]]:
    from cnnarch.models import list_models

    return {n: w for n in list_models() if (w := available_weights(n))}


def load_weights(name: str, weights: str | os.PathLike) -> Weights:
    """The weights ``weights`` for the registered network ``name`` (see the module docstring)."""
    text = os.fspath(weights)
    if "://" in text:
        return _from_url(text)
    if Path(text).expanduser().is_file():
        return load_weights_file(Path(text).expanduser())
    shipped = SHIPPED_DIR / f"{name}-{text}.safetensors"
    if text == "DEFAULT" and name not in TORCHVISION_TWINS:
        shipped = next(iter(sorted(SHIPPED_DIR.glob(f"{name}-*.safetensors"))), shipped)
    if shipped.is_file():
        return load_weights_file(shipped)
    if name in TORCHVISION_TWINS:
        from torchvision.models import get_model_weights

        enum = get_model_weights(TORCHVISION_TWINS[name])
        if text == "DEFAULT" or text in enum.__members__:
            return _from_torchvision(name, enum.DEFAULT if text == "DEFAULT" else enum[text])
    have = available_weights(name)
    others = ", ".join(f"{n} ({', '.join(w)})" for n, w in models_with_weights().items())
    raise ValueError(
        f"{name} has no weights {text!r} and no file of that name exists; "
        + (f"{name} has: {', '.join(have)}. " if have else f"{name} has no named weights. ")
        + f"Named weights exist for: {others}. A local file or URL works for any network."
    )


def _from_torchvision(name: str, w) -> Weights:
    tf = w.transforms()
    google = TORCHVISION_TWINS[name] == "googlenet"
    try:
        state = w.get_state_dict(progress=False, check_hash=True)
    except OSError as e:  # offline (URLError), or an unwritable cache
        from torch.hub import get_dir

        cache = Path(get_dir()) / "checkpoints"
        raise InputError(
            f"torchvision's {name} weights {w.name} could not be fetched from {w.url} ({e})",
            hint=f"connect to the internet once (they are kept in {cache}), or download the file there "
            "yourself, or pass a local file as the weights",
        ) from None
    meta = WeightsMeta(
        num_classes=len(w.meta["categories"]),
        classes=tuple(w.meta["categories"]),
        resize=tf.resize_size[0],
        crop=tf.crop_size[0],
        mean=None if google else tuple(tf.mean),  # None: googlenet_tv's declared mean and std
        std=None if google else tuple(tf.std),
        source=f"torchvision {type(w).__name__}.{w.name} ({w.url})",
        model=name,
    )
    return Weights(state, meta)


def url_cache_path(url: str) -> Path:
    """Where ``url`` is cached: ``$TORCH_HOME/hub/checkpoints/<sha256 of the URL>-<its file name>``, so
    that two URLs ending in the same name never share a file."""
    from torch.hub import get_dir

    name = Path(urlsplit(url).path).name or "weights"
    return Path(get_dir()) / "checkpoints" / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}-{name}"


def _from_url(url: str) -> Weights:
    """Fetch through ``torch.hub``'s cache (``$TORCH_HOME/hub/checkpoints``), then read like a file."""
    from torch.hub import download_url_to_file

    cache = url_cache_path(url)
    if not cache.is_file():
        given = HASH_IN_NAME.search(Path(urlsplit(url).path).name)
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            download_url_to_file(url, str(cache), hash_prefix=given and given.group(1), progress=False)
        except (OSError, RuntimeError) as e:  # URLError, HTTPError: OSErrors; a wrong hash: RuntimeError
            raise InputError(
                f"could not fetch the weights {url} into {cache} ({e})",
                hint="check the address and the network, or download the file and pass its path",
            ) from None
    weights = load_weights_file(cache)
    return Weights(weights.state_dict, replace(weights.meta, source=f"{url} (cached at {cache})"))


def load_weights_file(path: Path) -> Weights:
    """A state_dict, a torchvision/timm/Lightning/cnnarch checkpoint, or safetensors, with its metadata."""
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                state = {k: f.get_tensor(k) for k in f.keys()}
                header = f.metadata() or {}
            meta = WeightsMeta.from_json(header["cnnarch"]) if "cnnarch" in header else None
        except (SafetensorError, ValueError, TypeError, KeyError) as e:
            raise InputError(
                f"{path} is not a readable .safetensors file ({path.stat().st_size} bytes; {e})",
                hint="the file is truncated or damaged: download or export it again",
            ) from None
        return _finish(state, meta, path)
    obj = safe_torch_load(path, "weights file")
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a state_dict or a checkpoint dict")
    if str(obj.get("format", "")).startswith("cnnarch-checkpoint"):
        return _finish(obj["model"], checkpoint_meta(obj), path)
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj.get(key), dict):
            return _finish(obj[key], None, path)
    return _finish(obj, None, path)


def checkpoint_meta(ckpt: dict) -> WeightsMeta:
    """The classes and preprocessing of a cnnarch training checkpoint, as its run recorded them
    (``data_info``): the shorter side resized to the size the run loaded its images at (256 for large
    images, streamed; else the images' own size), the centre crop it trained on, and its training
    set's mean and std; what it did not record, the network's declared preprocessing
    (:func:`with_preprocessing`). ``cnnarch eval``, ``predict`` and ``export`` all take a checkpoint's
    preprocessing from here."""
    info = ckpt.get("data_info", {})
    _, h, _ = info.get("image_shape", (None, None, None))
    crop = info.get("crop", h)
    meta = WeightsMeta(
        num_classes=ckpt["num_classes"],
        classes=tuple(ckpt.get("classes", ())),
        resize=h or crop,
        crop=crop,
        mean=None if "mean" not in info else tuple(info["mean"]),
        std=None if "std" not in info else tuple(info["std"]),
    )
    return with_preprocessing(meta, ckpt["model_name"])


def check_finite(state: dict, path) -> None:
    """Refuse weights holding NaN or infinity (a diverged run): they would classify every image alike."""
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        names = ", ".join(bad[:3]) + (", ..." if len(bad) > 3 else "")
        raise InputError(
            f"{path}: {len(bad)} of {len(state)} weight tensors hold NaN or infinite values ({names})",
            hint="the weights are broken (a run that diverged?): use an earlier checkpoint or others",
        )


def _finish(state: dict, meta: WeightsMeta | None, path: Path) -> Weights:
    if not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path}: no state_dict found (expected tensors keyed by parameter name)")
    check_finite(state, path)
    if meta is not None and meta.classes and len(meta.classes) != meta.num_classes:
        raise InputError(
            f"{path}: its metadata names {len(meta.classes)} classes for {meta.num_classes} outputs",
            hint="the file's metadata is inconsistent: export the weights again",
        )
    for prefix in ("module.", "_orig_mod."):
        if all(k.startswith(prefix) for k in state):
            state = {k.removeprefix(prefix): v for k, v in state.items()}
    meta = meta or WeightsMeta(num_classes=0)  # a bare state_dict: the network's classifier tells
    return Weights(state, replace(meta, source=meta.source or str(path)))


def without_machine_paths(value):
    """``value`` (metadata: dicts, lists, strings) with every absolute path cut to its last two parts
    (``/root/runs/r20/last.pt`` -> ``r20/last.pt``): weights that travel do not carry the directories of
    the machine that trained them."""
    if isinstance(value, dict):
        return {k: without_machine_paths(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(without_machine_paths(v) for v in value)
    if isinstance(value, str) and (value.startswith(("/", "~")) or re.match(r"^[A-Za-z]:[\\/]", value)):
        return "/".join(re.split(r"[\\/]", value.rstrip("/\\"))[-2:])
    return value


def save_weights(model: nn.Module, meta: WeightsMeta, path: str | os.PathLike) -> None:
    """Write ``model``'s weights as safetensors with ``meta`` in the header (how cnnarch ships weights),
    machine paths cut (:func:`without_machine_paths`)."""
    from safetensors.torch import save

    from cnnarch.data.base import atomic_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = WeightsMeta(**without_machine_paths(asdict(meta)))
    with atomic_file(path) as f:
        f.write(save(state, metadata={"cnnarch": meta.to_json()}))


def with_run_record(meta: WeightsMeta, checkpoint: Path) -> WeightsMeta:
    """The metadata of a checkpoint's weights, with what its run folder records: test accuracy
    (``results.json``), the configuration it was trained with, the checkpoint's date, and the machines
    that trained it (``machines.jsonl``, written by ``cnnarch experiment`` and its run scripts)."""
    from datetime import datetime, timezone

    from cnnarch.train.checkpoint import load_checkpoint

    record = {"config": load_checkpoint(checkpoint)["config"]}
    results = checkpoint.parent / "results.json"
    if results.is_file():
        try:
            r = json.loads(results.read_text())
            if not isinstance(r, dict):
                raise ValueError(f"a JSON {type(r).__name__}, not an object")
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(
                f"{results} (the test results beside {checkpoint.name}) is not readable JSON ({e}); "
                "delete or repair it to export without the recorded accuracy"
            ) from None
        record |= {k: r[k] for k in ("test_top1", "test_top5", "test_images", "tta_top1") if k in r}
    machines = checkpoint.parent / "machines.jsonl"
    if machines.is_file():
        record["machines"] = [json.loads(ln) for ln in machines.read_text().splitlines() if ln.strip()]
    mtime = datetime.fromtimestamp(checkpoint.stat().st_mtime, timezone.utc)
    record["date"] = mtime.strftime("%Y-%m-%d")
    return replace(meta, extra={**meta.extra, **record})


def replace_head(model: nn.Module, num_classes: int) -> list[str]:
    """Give every classifier (the declared one, and GoogLeNet's auxiliary heads) ``num_classes`` outputs,
    freshly initialised; returns the module paths of the replaced layers."""
    for path, m in classifiers(model).items():
        parent, _, attr = path.rpartition(".")
        setattr(model.get_submodule(parent), attr, nn.Linear(m.in_features, num_classes, m.bias is not None))
    return list(classifiers(model))


def with_preprocessing(meta: WeightsMeta, name: str) -> WeightsMeta:
    """``meta`` completed by the registry's declared preprocessing for ``name`` where the weights say
    nothing (a bare state_dict, a checkpoint of another tool): the one place preprocessing is decided."""
    declared = get_model_entry(name).preprocessing
    fields = ("resize", "crop", "mean", "std")
    return replace(meta, **{k: getattr(meta, k) or getattr(declared, k) for k in fields}, model=name)


def build_with_weights(entry, weights: str | os.PathLike, num_classes: int | None = None, **kwargs):
    """``create_model(name, weights=...)``: the network built for its weights' class count, loaded with
    ``strict=True``; with another ``num_classes`` the classifier is replaced (fine-tuning). The model
    carries ``weights_meta`` and ``replaced_head`` (the layers given fresh weights, if any)."""
    name = entry.name
    w = load_weights(name, weights)
    n = w.meta.num_classes or len(w.state_dict.get(f"{entry.classifier}.weight", ()))
    model = entry.builder(num_classes=n, **kwargs)
    model.model_name = name
    try:
        model.load_state_dict(w.state_dict)
    except RuntimeError as e:
        detail = " ".join(line.strip() for line in str(e).splitlines()[1:3])
        raise InputError(
            f"the weights {w.meta.source} do not fit {name}: {detail[:300]} "
            f"(are they for another network? `cnnarch info {name}` shows its layers)"
        ) from None
    meta, replaced = replace(w.meta, num_classes=n), []
    if num_classes is not None and num_classes != meta.num_classes:
        replaced = replace_head(model, num_classes)
        meta = replace(meta, num_classes=num_classes, classes=())
    model.weights_meta = with_preprocessing(meta, name)
    model.replaced_head = replaced
    return model
