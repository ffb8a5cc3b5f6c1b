"""The process that runs a student's code for the grader: standard library, NumPy, and torch for the
PyTorch part only.

The grader copies this file into a temporary folder and starts it as ``python -I -S harness.py WORKSPACE
LIBS MEMORY_BYTES FORBIDDEN...``, with ``sys.path`` holding the workspace, a folder of links to NumPy
(and, when the PyTorch part is graded, to torch and the packages it imports), and the standard library:
cnnarch (the grader and the answer key) cannot be imported. An audit hook (which Python code cannot
remove) refuses, and records, any import of ``cnnarch``, any file opened or listed under the FORBIDDEN
folders (cnnarch's sources), and any new process. Memory is capped with ``RLIMIT_DATA``, so a huge
allocation raises MemoryError in the check that made it.

The grader sends requests and this process answers over its stdin and stdout, in frames of JSON plus
raw ``.npy`` arrays (never pickle: the grader must not run code that the student's objects carry).
A request is a list of steps run in order; each step calls a student's function or method on
arguments the grader sent or on earlier steps' results (a forward pass's cache stays here), and
answers with what the grader asked to see, the names of the array arguments the call changed in
place, and any exception with the workspace line it came from. During a network's check the
student's layer functions can be swapped for proxies that ask the grader for the reference result,
so that a bug in a layer fails that layer's check only.
"""

import contextlib
import importlib
import inspect
import io
import json
import os
import struct
import sys
import traceback

WORKSPACE = os.path.realpath(sys.argv[1]) if __name__ == "__main__" else ""
PACKAGE = "cs231n"


# ---------------------------------------------------------------------------------------------
# Wire format, shared with the grader (which imports this module)


class Handle:
    """An object the other side keeps (a reference layer's cache); only its number travels."""

    def __init__(self, token):
        self.token = token

    def __repr__(self):
        return f"<cache {self.token} kept by the grader>"


class Opaque:
    """Something the student returned that cannot travel (an object, a function)."""

    def __init__(self, type_name):
        self.type_name = type_name

    def __repr__(self):
        return f"<{self.type_name}>"


def _to_tree(obj, arrays):
    import numpy as np

    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (np.ndarray, np.generic)):  # before int and float: np.float64 is a float
        if np.asarray(obj).dtype.kind not in "biufc":
            return {"x": f"array of {np.asarray(obj).dtype}"}
        arrays.append(np.asarray(obj))
        return {"a": len(arrays) - 1}
    if isinstance(obj, int):
        return {"i": str(int(obj))}
    if isinstance(obj, float):
        return {"f": repr(float(obj))}
    if isinstance(obj, tuple):
        return {"t": [_to_tree(v, arrays) for v in obj]}
    if isinstance(obj, list):
        return {"l": [_to_tree(v, arrays) for v in obj]}
    if isinstance(obj, dict) and all(isinstance(k, str) for k in obj):
        return {"d": [[k, _to_tree(v, arrays)] for k, v in obj.items()]}
    if isinstance(obj, Handle):
        return {"h": obj.token}
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.Tensor):  # the PyTorch part's results travel as arrays
        return _to_tree(obj.detach().cpu().numpy(), arrays)
    return {"x": type(obj).__name__}


def _from_tree(tree, arrays):
    if tree is None or isinstance(tree, (bool, str)):
        return tree
    (kind, value), *_ = tree.items()
    if kind == "i":
        return int(value)
    if kind == "f":
        return float(value)
    if kind == "a":
        return arrays[value]
    if kind == "t":
        return tuple(_from_tree(v, arrays) for v in value)
    if kind == "l":
        return [_from_tree(v, arrays) for v in value]
    if kind == "d":
        return {k: _from_tree(v, arrays) for k, v in value}
    if kind == "h":
        return Handle(value)
    return Opaque(value)


def encode(obj) -> bytes:
    import numpy as np

    arrays = []
    head = json.dumps(_to_tree(obj, arrays)).encode()
    body = io.BytesIO()
    for a in arrays:
        np.lib.format.write_array(body, np.ascontiguousarray(a), allow_pickle=False)
    return struct.pack(">I", len(head)) + head + body.getvalue()


def decode(data: bytes):
    import numpy as np

    (n,) = struct.unpack(">I", data[:4])
    tree = json.loads(data[4 : 4 + n])
    body = io.BytesIO(data[4 + n :])
    arrays = []
    while body.tell() < len(data) - 4 - n:
        arrays.append(np.lib.format.read_array(body, allow_pickle=False))
    return _from_tree(tree, arrays)


def send(stream, obj) -> None:
    data = memoryview(struct.pack(">Q", len(data := encode(obj))) + data)
    while data:  # an unbuffered pipe may take part of it
        written = stream.write(data)
        data = data[written if written is not None else len(data) :]
    stream.flush()


def read_exactly(stream, n: int) -> bytes:
    chunks = []
    while n:
        chunk = stream.read(n)
        if not chunk:
            raise EOFError("the other side closed the pipe")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def receive(stream):
    (n,) = struct.unpack(">Q", read_exactly(stream, 8))
    return decode(read_exactly(stream, n))


# ---------------------------------------------------------------------------------------------
# The guard


class Violation(PermissionError):
    pass


VIOLATIONS = []
_SPAWN = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "pty.spawn")


def install_guard(forbidden) -> None:
    """The audit hook. ``forbidden`` is kept in the hook's closure as a tuple, out of reach of the
    student's code, and the hook itself is referenced from nowhere else."""
    forbidden = tuple(os.path.realpath(f) for f in forbidden)
    record = VIOLATIONS.append

    def refuse(what):
        record(what + _workspace_line(traceback.extract_stack()[:-2]))
        raise Violation(what)

    def audit(event, args):
        if event == "import" and args and str(args[0]).split(".")[0] == "cnnarch":
            refuse(f"imports {args[0]}, the grader's package (the answer key)")
        elif event in ("open", "os.listdir", "os.scandir") and args and isinstance(args[0], (str, bytes)):
            path = os.path.realpath(os.fsdecode(args[0]))
            if any(path == f or path.startswith(f + os.sep) for f in forbidden):
                refuse(f"reads {path}, a file of the grader's package (the answer key)")
        elif event in _SPAWN:
            refuse(f"starts another process ({event})")

    sys.addaudithook(audit)


def _workspace_line(frames) -> str:
    """`` (cs231n/layers.py line 52)`` for the innermost frame in the workspace, else ''."""
    mine = [f for f in frames if f.filename.startswith(WORKSPACE + os.sep)]
    if not mine:
        return ""
    return f" ({os.path.relpath(mine[-1].filename, WORKSPACE)} line {mine[-1].lineno})"


# ---------------------------------------------------------------------------------------------
# Running steps


def _exception(e) -> dict:
    message = str(e).splitlines()[0] if str(e) else ""
    return {
        "type": type(e).__name__,
        "message": message,
        "where": _workspace_line(traceback.extract_tb(e.__traceback__)),
    }


def _lookup(step, store):
    """The callable of a step: ``{"module": "layers", "call": "affine_forward"}`` in the workspace
    package, or ``{"call": "net.loss"}`` on an earlier step's result."""
    head, *rest = step["call"].split(".")
    if "module" in step:
        obj = getattr(importlib.import_module(f"{PACKAGE}.{step['module']}"), head)
    else:
        obj = store[head]
    for name in rest:
        obj = getattr(obj, name)
    return obj


def _resolve(value, store):
    if isinstance(value, dict) and set(value) == {"$ref"}:
        ref, *index = value["$ref"]
        obj = store[ref]
        for i in index:
            obj = obj[i]
        return obj
    if isinstance(value, list):
        return [_resolve(v, store) for v in value]
    if isinstance(value, tuple):
        return tuple(_resolve(v, store) for v in value)
    if isinstance(value, dict):
        return {k: _resolve(v, store) for k, v in value.items()}
    return value


def _tensors(value):
    """NumPy arrays in ``value`` (and in its lists, tuples and dicts) as torch tensors."""
    import numpy as np
    import torch

    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, (list, tuple)):
        return type(value)(_tensors(v) for v in value)
    if isinstance(value, dict):
        return {k: _tensors(v) for k, v in value.items()}
    return value


def _train(model, spec) -> float:
    """Train the student's ``model`` with Adam and the cross-entropy loss on the images the grader
    sent, then return its accuracy on the held-out ones (the grader's training loop, not the
    student's)."""
    import torch
    import torch.nn.functional as F

    X, y, X_val, y_val = (_tensors(a) for a in spec["data"])
    torch.manual_seed(spec["seed"])
    optimizer = torch.optim.Adam(model.parameters(), lr=spec["lr"])
    for _ in range(spec["epochs"]):
        model.train()
        for idx in torch.randperm(len(X)).split(spec["batch_size"]):
            loss = F.cross_entropy(model(X[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        return float((model(X_val).argmax(1) == y_val).double().mean())


def _fingerprints(fn, args):
    """{argument name: (array, a copy)} of the array arguments, to see which ones a call changes."""
    import numpy as np

    try:
        names = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        names = []
    out = {}
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray):
            name = names[i] if i < len(names) else f"argument {i + 1}"
            out[name] = (a, a.copy())
    return out


def _pick(value, path):
    for i in path:
        value = value[i]
    return value


class Proxies:
    """The student's exercise functions in every loaded workspace module, swapped for proxies that
    ask the grader for the reference result while a network's check runs."""

    def __init__(self, names, channel):
        self.names, self.channel, self.swapped = names, channel, []

    def _proxy(self, name):
        channel = self.channel

        def proxy(*args):
            send(channel[1], {"rpc": name, "args": list(args)})
            reply = receive(channel[0])
            if "error" in reply:
                raise RuntimeError(reply["error"])
            for arg, after in zip(args, reply["dicts"], strict=False):  # bn_param's running averages
                if isinstance(arg, dict) and isinstance(after, dict):
                    arg.update(after)
            return reply["value"]

        proxy.__name__ = name.split(".")[-1]
        return proxy

    def __enter__(self):
        student = {}
        for name in self.names:
            module, attr = name.rsplit(".", 1)
            fn = getattr(sys.modules.get(f"{PACKAGE}.{module}"), attr, None)
            if fn is not None:
                student[id(fn)] = self._proxy(name)
        for modname, mod in list(sys.modules.items()):
            if modname == PACKAGE or modname.startswith(PACKAGE + "."):
                for key, value in list(vars(mod).items()):
                    if id(value) in student:
                        self.swapped.append((mod, key, value))
                        setattr(mod, key, student[id(value)])
        return self

    def __exit__(self, *exc):
        for mod, key, value in self.swapped:
            setattr(mod, key, value)


def run_step(step, store, channel):
    """One step: ``{"ok": True, "value", "mutated", "after"}`` or ``{"ok": False, ...exception}``."""
    import numpy as np

    if "set" in step:  # the grader gives a network its parameters
        setattr(store[step["set"]], step["attr"], _resolve(step["value"], store))
        return {"ok": True, "mutated": []}
    fn = _lookup(step, store)
    args = [_resolve(a, store) for a in step.get("args", [])]
    kwargs = {k: _resolve(v, store) for k, v in step.get("kwargs", {}).items()}
    if step.get("tensors"):  # the PyTorch part: the student's code gets tensors, not arrays
        args, kwargs = _tensors(args), _tensors(kwargs)
    if "train" in step:  # the grader's training loop, on the model an earlier step made
        model = fn
        fn = lambda: _train(model, step["train"])  # noqa: E731
    before = _fingerprints(fn, args) if step.get("watch", True) else {}
    if "seed" in step:
        np.random.seed(step["seed"])
        if "torch" in sys.modules:  # the PyTorch part: its initializations draw from torch's generator
            sys.modules["torch"].manual_seed(step["seed"])
    seen = len(VIOLATIONS)
    proxies = Proxies(step["proxies"], channel) if step.get("proxies") else contextlib.nullcontext()
    try:
        with proxies:
            result = fn(*args, **kwargs)
    except BaseException as e:  # noqa: BLE001 (SystemExit and the like from student code fail the check)
        if isinstance(e, KeyboardInterrupt):
            raise
        answer = {"ok": False, **_exception(e)}
        if len(VIOLATIONS) > seen:
            answer["violation"] = VIOLATIONS[seen]
        return answer
    if len(VIOLATIONS) > seen:
        return {"ok": False, "type": "Violation", "message": "", "where": "", "violation": VIOLATIONS[seen]}
    if "as" in step:
        store[step["as"]] = result
    mutated = [name for name, (a, copy) in before.items() if not np.array_equal(a, copy, equal_nan=True)]
    answer = {"ok": True, "mutated": mutated}
    if step.get("send", True) is not False:
        answer["value"] = _pick(result, step.get("send") or [])
    if "send_args" in step:
        answer["after"] = [args[i] for i in step["send_args"]]
    if "send_attr" in step:
        answer["attr"] = {name: getattr(result, name, None) for name in step["send_attr"]}
    return answer


def run_request(request, channel):
    store, answers = {}, []
    for step in request["steps"]:
        answer = run_step(step, store, channel)
        answers.append(answer)
        if not answer["ok"]:
            break
    return answers


def import_workspace(modules, channel) -> dict:
    """Import the workspace's modules one by one, telling the grader before each (so that an import
    that hangs or kills the process is reported as that module's)."""
    status = {}
    for name in modules:
        send(channel[1], {"importing": name})
        seen = len(VIOLATIONS)
        try:
            importlib.import_module(f"{PACKAGE}.{name}")
        except BaseException as e:  # noqa: BLE001
            if isinstance(e, KeyboardInterrupt):
                raise
            status[name] = _exception(e)
        else:
            status[name] = None
        if len(VIOLATIONS) > seen:
            status[name] = {"type": "Violation", "message": "", "where": "", "violation": VIOLATIONS[seen]}
    return status


def main():
    import resource

    workspace, libs, memory, *forbidden = sys.argv[1:]
    # Answers go to the grader through a private copy of stdout; the student's prints go to stderr.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    channel = (sys.stdin.buffer, out)
    sys.path[:0] = [workspace, libs]
    import numpy  # noqa: F401 (before the cap and the hook, which would refuse its own files otherwise)

    if int(memory) and os.path.isfile("/proc/self/status"):
        # RLIMIT_DATA counts every private mapping (NumPy's arrays included) but not the address space
        # reserved by libraries, so the cap is on what the student's code allocates beyond this point
        with open("/proc/self/status") as f:
            used = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmData:"))
        hard = resource.getrlimit(resource.RLIMIT_DATA)[1]
        resource.setrlimit(resource.RLIMIT_DATA, (used + int(memory), hard))
    install_guard(forbidden)
    send(out, {"imports": import_workspace(receive(channel[0])["modules"], channel)})
    while True:
        try:
            request = receive(channel[0])
        except EOFError:
            return
        send(out, {"answers": run_request(request, channel)})


if __name__ == "__main__":
    main()
