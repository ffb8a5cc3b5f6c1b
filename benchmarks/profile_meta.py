"""How long `cnnarch.analysis.profile` takes on the meta device, next to the references run in the same
process: a plain meta forward pass (no analysis) and torch's FlopCounterMode on the same pass.

    OMP_NUM_THREADS=1 python benchmarks/profile_meta.py [--repeat 5]

Each time is the best of ``--repeat`` runs after one warm-up (the first pass imports torch._dynamo and
the registry's input-size guard searches once per model).
"""

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from cnnarch.analysis import profile
from cnnarch.models import create_model


def best(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("names", nargs="*", default=["vgg19", "resnet152"])
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print(f"{'model':<10} {'plain fwd':>10} {'FlopCounter':>12} {'profile':>9}  profile / plain")
    for name in args.names:
        with torch.device("meta"):
            model = create_model(name).eval()
        t_plain, t_count, t_prof = timings(model, args.repeat)
        print(f"{name:<10} {t_plain:>9.3f}s {t_count:>11.3f}s {t_prof:>8.3f}s  {t_prof / t_plain:.2f}x")


def timings(model, repeat: int) -> tuple[float, float, float]:
    x = torch.empty(1, 3, 224, 224, device="meta")

    def plain():
        with torch.no_grad():
            model(x)

    def counted():
        with FlopCounterMode(display=False), torch.no_grad():
            model(x)

    return best(plain, repeat), best(counted, repeat), best(lambda: profile(model, (3, 224, 224)), repeat)


if __name__ == "__main__":
    main()
