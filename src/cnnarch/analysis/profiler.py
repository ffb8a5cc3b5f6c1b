"""Per-layer profile of any ``nn.Module``: shapes, parameters, activation memory, MACs, receptive field.

How it works. The forward pass runs once (by default on the ``meta`` device, so nothing is allocated and
VGG-19 takes a fraction of a second) under a ``TorchDispatchMode`` that sees every ATen operator the
model executes, whether it comes from a module (``nn.Conv2d``) or from a function in ``forward``
(``torch.cat``, ``x + identity``, ``F.relu``). Forward hooks on every submodule tell which module is
running. Each operator is attributed to the innermost running module: a leaf module's record sums the
operators it ran; an operator run directly in a container's ``forward`` becomes a record of its own,
named after the container and the operator (``layer1.0.add_``, ``inception3a.cat``). Each record also
lists, in ``extra["_inputs"]``, the records whose outputs it read ("" for the input): the data flow that
:mod:`cnnarch.analysis.diagram` draws.

Alongside, every tensor carries a small "field": its receptive field and jump (stride) relative to the
input per spatial axis, its depth in weighted layers, and the allocation it lives in. Fields compose
through any graph: a convolution or pooling grows the field, an elementwise op, a residual sum or a
concatenation takes the maximum over its inputs, so for branches the longest path wins.

What is counted and how (MACs and FLOPs, ``other_ops``, activation memory, the forward + backward
estimate, receptive field and jump, depth) is written out in docs/analysis.md, "Conventions".
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import flop_registry
from torch.utils.weak import WeakTensorKeyDictionary

from cnnarch.errors import InputError, check_memory
from cnnarch.models import input_size_range

aten = torch.ops.aten

_CONV = {aten.convolution, aten._convolution}
_MATMUL = {aten.mm, aten.addmm, aten.bmm, aten.baddbmm}
_MAX_POOL = {
    aten.max_pool1d,
    aten.max_pool2d,
    aten.max_pool3d,
    aten.max_pool2d_with_indices,
    aten.max_pool3d_with_indices,
}
_AVG_POOL = {aten.avg_pool1d, aten.avg_pool2d, aten.avg_pool3d}
_ADAPTIVE_POOL = {
    aten._adaptive_avg_pool2d,
    aten._adaptive_avg_pool3d,
    aten.adaptive_max_pool2d,
    aten.adaptive_max_pool3d,
}
_PAD = {aten.constant_pad_nd, aten.reflection_pad1d, aten.reflection_pad2d, aten.replication_pad2d}
_NORM = {
    aten.native_batch_norm,
    aten._native_batch_norm_legit,
    aten._native_batch_norm_legit_no_training,
    aten.native_layer_norm,
    aten.native_group_norm,
}
_ELEMENTWISE = {
    "relu", "relu_", "add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "sigmoid", "sigmoid_",
    "tanh", "tanh_", "hardtanh", "hardtanh_", "gelu", "silu", "silu_", "clamp", "clamp_", "clamp_min",
    "clamp_min_", "pow", "sqrt", "rsqrt", "exp", "neg", "leaky_relu", "leaky_relu_", "hardswish",
    "hardswish_", "hardsigmoid", "hardsigmoid_", "elu", "elu_", "threshold", "where", "maximum",
    "minimum", "_softmax", "_log_softmax",
}  # fmt: skip
# Reshapes that copy when they must: for the field they behave like views.
_RESHAPES = {aten._unsafe_view, aten.clone, aten._to_copy, aten.contiguous}
_POOL = _MAX_POOL | _AVG_POOL
_WEIGHTED = _CONV | _MATMUL


@dataclass(frozen=True)
class _Op:
    """What the tracer needs to know of an operator overload, looked up once per overload."""

    packet: object
    aliased: tuple  # per return: does it alias an input (views, in-place ops)?
    is_view: bool
    inplace_elementwise: bool
    makes_record: bool  # in a container's forward: views and detach make no record


_OPS: dict = {}


def _op(func) -> _Op:
    info = _OPS.get(func)
    if info is None:
        packet = func.overloadpacket
        info = _Op(
            packet=packet,
            aliased=tuple(r.alias_info is not None for r in func._schema.returns),
            is_view=func.is_view,
            inplace_elementwise=func._schema.name.endswith("_") and packet.__name__ in _ELEMENTWISE,
            makes_record=not (func.is_view or packet in (aten.detach, aten.lift_fresh)),
        )
        _OPS[func] = info
    return info


@dataclass(frozen=True)
class _Field:
    """What a tensor's elements see of the input: per spatial axis (right-aligned), rf and jump."""

    rf: tuple | None  # None: global, the element depends on the whole input
    jump: tuple | None
    depth: int = 0  # weighted layers on the longest path from the input
    flat: bool = False  # a reshape merged the spatial axes: the field holds, the position is lost


def _as_tuple(v, n: int) -> tuple:
    if isinstance(v, int):
        return (v,) * n
    v = tuple(v)
    return v * n if len(v) == 1 else v


def _num(x):
    """Fractions that are whole numbers become ints."""
    return int(x) if isinstance(x, Fraction) and x.denominator == 1 else x


def _window(f: _Field, kernel, stride, dilation, transposed: bool = False) -> _Field:
    """A sliding window (convolution or pooling) over the trailing ``len(kernel)`` axes."""
    if f.rf is None:
        return f
    if f.flat:
        return _Field(None, None, f.depth)
    rf, jump = list(f.rf), list(f.jump)
    for i in range(1, min(len(kernel), len(rf)) + 1):
        span = (kernel[-i] - 1) * dilation[-i] + 1
        if transposed:
            jump[-i] = _num(Fraction(jump[-i]) / stride[-i])
            rf[-i] = _num(rf[-i] + (span - 1) * Fraction(jump[-i]))
        else:
            rf[-i] = rf[-i] + (span - 1) * jump[-i]
            jump[-i] = jump[-i] * stride[-i]
    return _Field(tuple(rf), tuple(jump), f.depth)


def _adaptive(f: _Field, in_size: Sequence[int], out_size: Sequence[int]) -> _Field:
    """Adaptive pooling: bin j covers [floor(j*i/o), ceil((j+1)*i/o)); output 1 means global."""
    if f.rf is None or f.flat:
        return _Field(None, None, f.depth)
    if all(o == 1 for o in out_size):
        return _Field(None, None, f.depth)
    rf, jump = list(f.rf), list(f.jump)
    for i in range(1, min(len(out_size), len(rf)) + 1):
        n_in, n_out = in_size[-i], out_size[-i]
        span = max(-((-(j + 1) * n_in) // n_out) - (j * n_in) // n_out for j in range(n_out))
        rf[-i] = _num(rf[-i] + (span - 1) * Fraction(jump[-i]))
        jump[-i] = _num(Fraction(jump[-i]) * Fraction(n_in, n_out))
    return _Field(tuple(rf), tuple(jump), f.depth)


def _merge(fields: list[_Field], depth_add: int = 0) -> _Field | None:
    """Elementwise ops, sums and concatenations: the max over inputs (global wins)."""
    if not fields:
        return None
    depth = max(f.depth for f in fields) + depth_add
    flat = any(f.flat for f in fields)
    if any(f.rf is None for f in fields) or len({len(f.rf) for f in fields}) > 1:
        return _Field(None, None, depth)
    rf = tuple(max(v) for v in zip(*(f.rf for f in fields), strict=True))
    jump = tuple(max(v) for v in zip(*(f.jump for f in fields), strict=True))
    return _Field(rf, jump, depth, flat)


def _tensors(*seqs) -> list[torch.Tensor]:
    """The tensors among ATen arguments (a tensor, or a list of them as for ``cat``); cheaper than pytree."""
    out = []
    for seq in seqs:
        for a in seq:
            if isinstance(a, torch.Tensor):
                out.append(a)
            elif isinstance(a, list | tuple):
                out.extend(t for t in a if isinstance(t, torch.Tensor))
    return out


def _pool_window(packet, args) -> tuple[tuple, tuple, tuple]:
    """(kernel, stride, dilation) of an ATen pooling call; an empty stride means the kernel's."""
    n = int(re.search(r"(\d)d", packet.__name__).group(1))
    kernel = _as_tuple(args[1], n)
    stride = _as_tuple(args[2], n) if len(args) > 2 and args[2] else kernel
    dilation = _as_tuple(args[4], n) if packet in _MAX_POOL and len(args) > 4 else (1,) * n
    return kernel, stride, dilation


def _prod(xs) -> int:
    return math.prod(int(x) for x in xs)


@dataclass
class Layer:
    """One record of the profile: a module call, or an operator run directly in a container's forward."""

    name: str
    type: str
    kind: str  # "module" (a leaf module), "function" (an operator in forward), "block" (a container)
    level: int  # nesting depth: children of the root are 1
    output_shape: tuple
    weights: int = 0
    biases: int = 0
    activations: int = 0  # elements of the output (all tensor outputs)
    activation_bytes: int = 0  # bytes newly allocated for the output
    macs: int = 0
    train_macs: int = 0  # forward + backward MACs of one training step (see ``Profile.train_flops``)
    other_ops: int = 0
    rf: tuple | None = None
    jump: tuple | None = None
    input_shape: tuple = ()
    extra: dict = field(default_factory=dict)  # kernel/stride/groups etc. of a leaf module

    @property
    def params(self) -> int:
        return self.weights + self.biases

    @property
    def flops(self) -> int:
        return 2 * self.macs


@dataclass
class Profile:
    """The result of :func:`profile`: ``layers`` (leaf modules and operators in execution order),
    ``blocks`` (containers, for ``rows(depth)``) and totals."""

    model: str
    input_shape: tuple  # with the batch dimension
    dtype: torch.dtype
    device: str
    layers: list[Layer]
    blocks: list[Layer]
    params: int  # every parameter of the model, counted once
    weights: int
    biases: int
    unused: list[tuple[str, int]]  # (module, params) of modules the forward never called
    input_bytes: int
    depth: int
    rf: tuple | None  # of the output
    jump: tuple | None
    outputs: tuple[str, ...] = ()  # the records that wrote the tensors the network returns, in order

    @property
    def inference_params(self) -> int:
        """Parameters the forward pass uses (GoogLeNet's training-only auxiliary heads left out)."""
        return self.params - sum(n for _, n in self.unused)

    @property
    def batch_size(self) -> int:
        return self.input_shape[0]

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def train_flops(self) -> int:
        """FLOPs of a training step (forward + backward) for the batch: every product's forward, and
        in the backward one product of the same size per operand that gets a gradient (the weights',
        and the input's except where it is the network's input); as ``FlopCounterMode`` counts them."""
        return 2 * sum(layer.train_macs for layer in self.layers)

    @property
    def train_flops_per_image(self) -> int:
        return self.train_flops // self.batch_size

    @property
    def other_ops(self) -> int:
        return sum(layer.other_ops for layer in self.layers)

    @property
    def activation_bytes(self) -> int:
        """Input + every new output of the forward pass, for the whole batch."""
        return self.input_bytes + sum(layer.activation_bytes for layer in self.layers)

    @property
    def activations_per_image(self) -> int:
        """Elements of the input and of every newly allocated output, per image."""
        elems = self.input_bytes // self.dtype.itemsize
        elems += sum(ly.activations for ly in self.layers if ly.activation_bytes)
        return elems // self.batch_size

    @property
    def forward_bytes_per_image(self) -> int:
        return self.activation_bytes // self.batch_size

    @property
    def train_bytes_per_image(self) -> int:
        """Forward + backward estimate: each activation also holds a gradient of its size."""
        return 2 * self.forward_bytes_per_image

    @property
    def param_bytes(self) -> int:
        return self.params * self.dtype.itemsize

    @property
    def macs_per_image(self) -> int:
        return self.macs // self.batch_size

    def images_that_fit(self, memory_bytes: float, *, training: bool = True, with_params: bool = True) -> int:
        """How many images fit in ``memory_bytes`` of accelerator memory.

        ``training``: forward + backward activations per image (else forward only). ``with_params``:
        first subtract the weights (and in training their gradients; optimizer state is not counted).
        """
        free = memory_bytes
        if with_params:
            free -= self.param_bytes * (2 if training else 1)
        per_image = self.train_bytes_per_image if training else self.forward_bytes_per_image
        return max(0, int(free // per_image))

    def rows(self, depth: int | None = None) -> list[Layer]:
        """Layers down to nesting ``depth``: a container at that depth stands for everything inside it."""
        if depth is None:
            return list(self.layers)
        out = [b for b in self.blocks if b.level == depth]
        out += [layer for layer in self.layers if layer.level <= depth]
        return sorted(out, key=lambda r: r.extra["_order"])  # execution order

    def __str__(self) -> str:
        """The summary table and totals (``print(profile(model))``)."""
        from cnnarch.analysis.report import format_table

        return format_table(self)

    def _repr_html_(self) -> str:
        """The table with its totals, for Jupyter."""
        from cnnarch.analysis.html_report import profile_page

        return profile_page(self)


class _Tracer(TorchDispatchMode):
    """Sees every operator; keeps each tensor's field and allocation; attributes costs to modules."""

    def __init__(self, root: nn.Module):
        super().__init__()
        self.fields = WeakTensorKeyDictionary()
        self.alloc = WeakTensorKeyDictionary()  # tensor -> allocation id
        self.producer = WeakTensorKeyDictionary()  # tensor -> name of the record that wrote it last
        self.alloc_bytes: dict[int, int] = {}
        self.params = WeakTensorKeyDictionary()
        self.learns = WeakTensorKeyDictionary()  # tensors computed from a parameter: they get gradients
        self.stack: list[tuple[Layer, int]] = []  # (record, last allocation id before the call)
        self.names = {m: n for n, m in root.named_modules(remove_duplicate=False)}
        self.records: list[Layer] = []
        self.calls: dict[str, int] = {}
        self.seen_params: set[int] = set()
        self.order = 0

    # ----- allocations and fields
    def _new_alloc(self, t: torch.Tensor) -> None:
        aid = len(self.alloc_bytes) + 1
        self.alloc[t] = aid
        self.alloc_bytes[aid] = t.numel() * t.element_size()

    def _field(self, t) -> _Field | None:
        return self.fields.get(t) if isinstance(t, torch.Tensor) else None

    def _out_field(self, func, args, tensors, out: torch.Tensor, weighted: bool) -> _Field | None:
        packet = func.overloadpacket
        fields = [f for f in (self._field(t) for t in tensors) if f is not None]
        if not fields:
            return None
        x = args[0] if args and isinstance(args[0], torch.Tensor) else None
        fx = self._field(x)
        if packet in _CONV and fx is not None:
            w = args[1]
            n = w.dim() - 2
            f = _window(fx, w.shape[2:], _as_tuple(args[3], n), _as_tuple(args[5], n), bool(args[6]))
            return _Field(f.rf, f.jump, f.depth + int(weighted), f.flat)
        if packet in _POOL and fx is not None:
            return _window(fx, *_pool_window(packet, args))
        if packet in _ADAPTIVE_POOL and fx is not None:
            return _adaptive(fx, x.shape[2:], out.shape[2:])
        if packet.__name__.startswith(("upsample_", "_upsample_")) and fx is not None and fx.rf is not None:
            n = min(len(fx.rf), out.dim() - 2)
            jump = list(fx.jump)
            for i in range(1, n + 1):
                jump[-i] = _num(Fraction(jump[-i]) * Fraction(x.shape[-i], out.shape[-i]))
            return _Field(fx.rf, tuple(jump), fx.depth, fx.flat)
        if packet in _MATMUL:
            return _Field(None, None, max(f.depth for f in fields) + int(weighted))
        if packet is aten.slice and fx is not None and fx.rf is not None and not fx.flat:
            dim = args[1] if len(args) > 1 else 0
            dim = dim % x.dim()
            step = args[4] if len(args) > 4 else 1
            axis = dim - x.dim()  # negative: right-aligned
            if -axis <= len(fx.rf) and step != 1:
                jump = list(fx.jump)
                jump[axis] *= step
                return _Field(fx.rf, tuple(jump), fx.depth)
            return fx
        if packet in _PAD or packet is aten.cat:
            return _merge(fields)
        keep = []
        for t in tensors:
            f = self._field(t)
            if f is None:
                continue
            n = len(f.rf) if f.rf is not None else 0
            same_grid = out.dim() >= n and tuple(out.shape[out.dim() - n :]) == tuple(t.shape[t.dim() - n :])
            if f.flat:
                same_grid = out.numel() >= t.numel()
            if same_grid or f.rf is None:
                keep.append(f)
            elif func.is_view or packet in _RESHAPES:
                keep.append(_Field(f.rf, f.jump, f.depth, True))
            else:  # an operator that mixes positions we do not know: assume it sees everything
                keep.append(_Field(None, None, f.depth))
        return _merge(keep)

    # ----- costs
    @staticmethod
    def _macs(func, args, kwargs, out) -> int:
        packet = func.overloadpacket
        if packet in _CONV:
            x, w = args[0], args[1]
            if args[6]:  # transposed: every input element meets Cout/groups * kernel weights
                return x.numel() * _prod(w.shape[1:])
            return out.numel() * _prod(w.shape[1:])
        if packet is aten.mm or packet is aten.bmm:
            return args[0].numel() * args[1].shape[-1]
        if packet is aten.addmm or packet is aten.baddbmm:
            return args[1].numel() * args[2].shape[-1]
        if packet in flop_registry:  # attention and other fused products: torch's own formula
            return flop_registry[packet](*args, **kwargs, out_val=out) // 2
        return 0

    def _backward_factor(self, packet, args) -> int:
        """1 (the forward) + 1 per operand of a product that gets a gradient in training: the backward
        of ``y = x W`` is ``dx = dy W^T`` (only where x comes from a parameter: not for the first
        layer, which reads the input) and ``dW = x^T dy``, each as many MACs as the forward."""
        if packet in _CONV or packet is aten.mm or packet is aten.bmm:
            operands = args[:2]
        elif packet is aten.addmm or packet is aten.baddbmm:
            operands = args[1:3]
        else:  # fused products (attention): both operands, as their weights are
            return 3
        return 1 + sum(t in self.params or t in self.learns for t in operands)

    @staticmethod
    def _other_ops(func, args, out) -> int:
        packet = func.overloadpacket
        if packet in _POOL:
            return out.numel() * _prod(_pool_window(packet, args)[0])
        if packet in _ADAPTIVE_POOL:
            return args[0].numel()
        if packet in _NORM:
            return 2 * out.numel()
        if packet.__name__ in _ELEMENTWISE:
            return out.numel()
        return 0

    # ----- module hooks
    def pre_hook(self, module, inputs):
        name = self.names.get(module, "")
        self.calls[name] = self.calls.get(name, 0) + 1
        if self.calls[name] > 1:
            name = f"{name}#{self.calls[name]}"
        leaf = next(iter(module.children()), None) is None
        rec = Layer(
            name=name,
            type=type(module).__name__,
            kind="module" if leaf else "block",
            level=name.count(".") + 1 if name else 0,
            output_shape=(),
            input_shape=tuple(inputs[0].shape) if inputs and isinstance(inputs[0], torch.Tensor) else (),
            extra={"_order": self._next_order(), "_parents": self._parents(), **_module_extra(module)},
        )
        for pname, p in module.named_parameters(recurse=False):
            if id(p) in self.seen_params:
                continue
            self.seen_params.add(id(p))
            if pname.endswith("bias"):
                rec.biases += p.numel()
            else:
                rec.weights += p.numel()
        self.stack.append((rec, len(self.alloc_bytes)))

    def post_hook(self, module, inputs, output):
        rec, first_alloc = self.stack.pop()
        outs = [t for t in tree_leaves(output) if isinstance(t, torch.Tensor)]
        self._finish(rec, outs, first_alloc)
        self.records.append(rec)

    def _parents(self) -> tuple[str, ...]:
        """The enclosing calls' record names, outermost first: a module called twice has two ("blk",
        "blk#2"), so what ran inside each call stays apart when the diagram collapses it."""
        return tuple(r.name for r, _ in self.stack if r.name)

    def _next_order(self) -> int:
        self.order += 1
        return self.order

    def _finish(self, rec: Layer, outs: list[torch.Tensor], first_alloc: int) -> None:
        if outs:
            rec.output_shape = tuple(outs[0].shape)
            f = self._field(outs[0])
            if f is not None:
                rec.rf, rec.jump = f.rf, f.jump
        rec.activations = sum(t.numel() for t in outs)
        new = {self.alloc.get(t, 0) for t in outs}
        rec.activation_bytes = sum(self.alloc_bytes[a] for a in new if a > first_alloc)

    # ----- every operator
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        op = _op(func)
        out = _meta_shortcut(op, args)
        if out is None:
            out = func(*args, **kwargs)
        outs = [out] if isinstance(out, torch.Tensor) else _tensors(out)
        if not outs:
            return out
        source = args[0] if args and isinstance(args[0], torch.Tensor) else None
        first_alloc = len(self.alloc_bytes)
        for i, t in enumerate(outs):
            aliased = i < len(op.aliased) and op.aliased[i]
            if not aliased:
                self._new_alloc(t)
            elif source is not None and t is not source and source in self.alloc:
                self.alloc[t] = self.alloc[source]
        inputs = _tensors(args, kwargs.values())
        weighted = op.packet in _WEIGHTED and any(a in self.params for a in inputs)
        if op.is_view and source is not None and source in self.params:
            self.params[outs[0]] = self.params[source]  # a view of a weight (Linear's transpose)
        for t in outs:
            f = self._out_field(func, args, inputs, t, weighted)
            if f is not None:
                self.fields[t] = f
        macs = self._macs(func, args, kwargs, outs[0])
        other = self._other_ops(func, args, outs[0])
        if any(t in self.params or t in self.learns for t in inputs):
            for t in outs:  # a gradient flows back to here in training
                self.learns[t] = True
        train = macs * self._backward_factor(op.packet, args) if macs else 0
        if not self.stack:
            return out
        sources = {self.producer[t] for t in inputs if t in self.producer}
        rec = self.stack[-1][0]
        if rec.kind == "module":
            rec.macs += macs
            rec.train_macs += train
            rec.other_ops += other
        elif op.makes_record:
            rec = self._function_record(func, rec, outs[:1], first_alloc, macs, other)
            rec.train_macs = train
            rec.extra.update(_op_extra(op.packet, args, outs[0]))
            for t in inputs:  # the weights a functional layer (F.conv2d, a loaded graph's ops) reads
                pid = self.params.get(t)
                if pid is not None and pid not in self.seen_params:
                    self.seen_params.add(pid)
                    if t.dim() == 1:
                        rec.biases += t.numel()
                    else:
                        rec.weights += t.numel()
        else:  # a view in a container's forward: its data comes from its source's writer
            rec = None
        if rec is not None:
            rec.extra.setdefault("_inputs", set()).update(sources - {rec.name})
        writer = rec.name if rec is not None else next(iter(sources), None)
        for t in outs:
            if writer is not None:
                self.producer[t] = writer
        return out

    def _function_record(self, func, parent: Layer, outs, first_alloc, macs, other) -> Layer:
        op = func.overloadpacket.__name__
        base = f"{parent.name}.{op}" if parent.name else op
        self.calls[base] = self.calls.get(base, 0) + 1
        name = base if self.calls[base] == 1 else f"{base}#{self.calls[base]}"
        rec = Layer(
            name=name,
            type=op,
            kind="function",
            level=parent.level + 1,
            output_shape=(),
            macs=macs,
            other_ops=other,
            extra={"_order": self._next_order(), "_parents": self._parents()},
        )
        self._finish(rec, outs, first_alloc)
        self.records.append(rec)
        return rec


def _meta_shortcut(op: _Op, args):
    """Shape-only results for the operators whose meta kernels are slow Python decompositions
    (batch norm, in-place elementwise): ResNet-152 on meta drops from ~1.5 s to ~0.2 s."""
    x = args[0] if args and isinstance(args[0], torch.Tensor) else None
    if x is None or x.device.type != "meta":
        return None
    if op.packet is aten._native_batch_norm_legit_no_training or (
        op.packet is aten.native_batch_norm and not args[5]
    ):
        return torch.empty_like(x), x.new_empty((0,)), x.new_empty((0,))
    if op.inplace_elementwise:
        others = [a for a in args[1:] if isinstance(a, torch.Tensor)]
        if all(torch.broadcast_shapes(o.shape, x.shape) == x.shape for o in others):
            return x
    return None


_EXTRA_KEYS = ("kernel_size", "stride", "padding", "dilation", "groups", "in_channels", "out_channels")
_EXTRA_KEYS += ("in_features", "out_features", "size", "output_size", "transposed")


def _op_extra(packet, args, out: torch.Tensor) -> dict:
    """What :func:`_module_extra` gives for a module, read from an operator run in a ``forward``
    (``F.max_pool2d``, ``F.conv2d``, the ops of a loaded TorchScript or exported graph)."""
    if packet in _CONV:
        w, n = args[1], args[1].dim() - 2
        groups, transposed = args[8], bool(args[6])
        return {
            "kernel_size": tuple(w.shape[2:]),
            "stride": _as_tuple(args[3], n),
            "groups": groups,
            "out_channels": w.shape[1] * groups if transposed else w.shape[0],
            "transposed": transposed,
        }
    if packet in _POOL:
        kernel, stride, _ = _pool_window(packet, args)
        return {"kernel_size": kernel, "stride": stride}
    if packet in _ADAPTIVE_POOL:
        return {"output_size": tuple(out.shape[2:])}
    if packet is aten.mean and out.dim() == args[0].dim() >= 3 and out.shape[2:].numel() == 1:
        return {"output_size": tuple(out.shape[2:]), "global_mean": True}  # F.adaptive_avg_pool2d(x, 1)
    if packet is aten.mean and args[0].dim() >= 3 and len(args) > 1:
        dims = {d % args[0].dim() for d in args[1]}
        if dims == set(range(2, args[0].dim())):  # x.mean((2, 3)): a global average pool
            return {"output_size": (1,) * len(dims), "global_mean": True}
    return {}


def _module_extra(m: nn.Module) -> dict:
    """The hyper-parameters the lecture's layout prints (kernel, stride, padding, groups, features)."""
    attrs = vars(m)
    return {k: attrs[k] for k in _EXTRA_KEYS if k in attrs}


def parse_input_size(input_size: Sequence[int] | str) -> tuple[int, ...]:
    """``"3x224x224"`` as ``(C, H, W)`` (the one reading of ``--input`` for every command), or a
    sequence ``(channels, *spatial)`` as a tuple; anything else is refused with an example."""
    if isinstance(input_size, str):
        try:
            size = tuple(int(v) for v in input_size.lower().split("x"))
        except ValueError:
            size = ()
        if len(size) != 3 or min(size) < 1:
            raise InputError(
                f"input size {input_size!r} is not C x H x W, three whole numbers of 1 or more like 3x224x224"
            )
        return size
    size = tuple(int(v) for v in input_size)
    if len(size) < 2 or min(size) < 1:
        raise InputError(
            f"input size {size} must be (channels, *spatial) with positive sizes, e.g. (3, 224, 224)"
        )
    return size


def profile(
    model: nn.Module,
    input_size: Sequence[int] | str = (3, 224, 224),
    *,
    batch_size: int = 1,
    device: str | torch.device = "meta",
    dtype: torch.dtype | None = None,
    train: bool = False,
) -> Profile:
    """Profile ``model`` on one batch of ``batch_size`` inputs of shape ``input_size`` (C, H, W).

    ``device="meta"`` (default) runs the forward pass on shapes only: the model is not changed (its
    parameters are swapped for meta stand-ins during the call) and no activation memory is allocated.
    Any other device runs a real forward pass there; the model must already live on it. ``dtype`` sets
    the meta parameters' and the input's dtype (default: the model's). The model runs in eval mode
    unless ``train=True``; its mode is restored afterwards.
    """
    size = parse_input_size(input_size)
    device = torch.device(device)
    params = dict(model.named_parameters(remove_duplicate=False))
    buffers = dict(model.named_buffers(remove_duplicate=False))
    first = next(iter(params.values()), None)
    if dtype is None:
        dtype = first.dtype if first is not None and first.is_floating_point() else torch.get_default_dtype()
    x_shape = (batch_size, *size)
    tracer = _Tracer(model)
    was_training = model.training
    opaque = _opaque(model)
    if opaque and device.type == "meta":  # compiled code cannot take meta stand-ins: run it for real
        device = torch.device(first.device if first is not None else "cpu")
    if device.type != "meta":  # a real pass: know the memory it needs before allocating it
        need = math.prod(x_shape) * dtype.itemsize
        if not opaque:  # at least the input, and one layer's input and output at the same time
            shapes = profile(model, size, batch_size=batch_size, dtype=dtype, train=train)
            need += 2 * max((layer.activation_bytes for layer in shapes.layers), default=0)
        what = f"a {device} pass of {type(model).__name__} on a {'x'.join(map(str, x_shape))} input"
        hint = (
            "the meta device gives the same table without allocating (--device meta), or use a smaller input"
        )
        check_memory(need, what, device=str(device), hint=hint)
    hooks = []
    for name, m in model.named_modules():
        if any(name == o or name.startswith(o + ".") for o in opaque):
            continue
        hooks.append(m.register_forward_pre_hook(tracer.pre_hook))
        hooks.append(m.register_forward_hook(tracer.post_hook))
    try:
        model.train(train)
        with torch.no_grad():
            if device.type == "meta":
                swap = _meta_stand_ins(params, buffers, dtype)
                x = torch.empty(x_shape, device="meta", dtype=dtype)
            else:
                swap = None
                x = torch.randn(x_shape, device=device, dtype=dtype)
            for t in (swap or params).values():
                tracer.params[t] = id(t)
            tracer._new_alloc(x)
            tracer.producer[x] = ""  # the data flow (``extra["_inputs"]``) starts at the input, ""
            n_spatial = len(size) - 1
            tracer.fields[x] = _Field((1,) * n_spatial, (1,) * n_spatial)
            with tracer:
                if swap is None:
                    out = model(x)
                else:
                    out = torch.func.functional_call(model, swap, (x,), tie_weights=True, strict=False)
    except (RuntimeError, NotImplementedError) as e:
        raise _explain(model, size, device, e) from e
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    records = tracer.records
    # post hooks fire inner-first; restore call order
    records.sort(key=lambda r: r.extra["_order"])
    root = next((r for r in records if r.name == ""), None)
    layers = [r for r in records if r.kind in ("module", "function") and r.name != ""]
    if root is not None and root.kind == "module":  # the model itself is a single layer
        root.name, root.level = type(model).__name__, 1
        layers = [root]
    blocks = [r for r in records if r.kind == "block" and r.name != ""]
    _aggregate_blocks(blocks, layers)
    total = sum(p.numel() for p in model.parameters())  # a parameter shared by two modules counts once
    weights = sum(p.numel() for n, p in model.named_parameters() if not n.endswith("bias"))
    called = {r.name.split("#")[0] for r in records} | {""}
    for name in list(called):  # containers that have no forward of their own (ModuleList) ran too
        while name:
            name = name.rpartition(".")[0]
            called.add(name)
    called |= set(opaque)
    unused = [
        (name, sum(p.numel() for p in m.parameters()))
        for name, m in model.named_modules()
        if name not in called and name.rpartition(".")[0] in called and any(True for _ in m.parameters())
    ]
    outs = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
    f_out = tracer._field(outs[0]) if outs else None
    return Profile(
        model=type(model).__name__,
        input_shape=x_shape,
        dtype=dtype,
        device=str(device),
        layers=layers,
        blocks=blocks,
        params=total,
        weights=weights,
        biases=total - weights,
        unused=unused,
        input_bytes=x.numel() * x.element_size(),
        depth=max((tracer._field(t).depth for t in outs if tracer._field(t)), default=0),
        rf=f_out.rf if f_out else None,
        jump=f_out.jump if f_out else None,
        outputs=tuple(dict.fromkeys(tracer.producer[t] for t in outs if t in tracer.producer)),
    )


def _opaque(model: nn.Module) -> list[str]:
    """Submodules whose code is compiled (TorchScript, an exported graph): hooks cannot see inside, so
    their operators are recorded as operators of the module that calls them."""
    out = []
    for name, m in model.named_modules():
        if isinstance(m, torch.jit.ScriptModule | torch.fx.GraphModule) and not any(
            name.startswith(o + ".") for o in out
        ):
            out.append(name)
    return out


def _meta_stand_ins(params: dict, buffers: dict, dtype: torch.dtype) -> dict:
    """Meta tensors of the same shapes; tied parameters stay tied; float ones take ``dtype``."""
    by_id: dict[int, torch.Tensor] = {}
    out = {}
    for name, t in {**params, **buffers}.items():
        if id(t) not in by_id:
            by_id[id(t)] = torch.empty(
                t.shape, device="meta", dtype=dtype if t.is_floating_point() else t.dtype
            )
        out[name] = by_id[id(t)]
    return out


_SUMMED = ("weights", "biases", "activation_bytes", "macs", "train_macs", "other_ops")


def _aggregate_blocks(blocks: list[Layer], layers: list[Layer]) -> None:
    """A container's totals are the sums over the layers inside it (its own parameters included)."""
    by_block = {b.name.split("#")[0]: b for b in blocks}
    for b in blocks:
        b.extra["own_params"] = b.params
        b.activation_bytes = 0  # the memory a block allocates is that of the layers inside it
    for layer in layers:
        name = layer.name.split("#")[0]
        while "." in name:  # every enclosing container, by name
            name = name.rpartition(".")[0]
            b = by_block.get(name)
            if b is not None:
                for k in _SUMMED:
                    setattr(b, k, getattr(b, k) + getattr(layer, k))


def _explain(model: nn.Module, size: tuple, device: torch.device, e: Exception) -> ValueError:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    name = type(model).__name__
    shape = "x".join(map(str, size))
    if any(s in msg.lower() for s in ("too small", "output size", "kernel size can't be greater")):
        try:
            sizes = input_size_range(model, size[0])
        except (TypeError, ValueError):  # not a chain of layers whose sizes can be worked out
            sizes = None
        accepts = f"; it accepts {sizes.describe()}" if sizes else ""
        return ValueError(f"input {shape} is too small for {name} ({msg}){accepts}; try a larger --input")
    if device.type == "meta" and ("meta" in msg.lower() or "data-dependent" in msg.lower()):
        return ValueError(
            f"{name} cannot run on the meta device ({msg}): its forward reads tensor values; "
            "profile it with device='cpu' and a small input"
        )
    return ValueError(f"{name} failed on input {shape} ({type(e).__name__}: {msg})")
