"""Benchmark: thesis_lib PGD vs torchattacks and ART PGD with equal settings, on the same model and images.

Setting (protocol "Evaluation"): L-inf, eps 8/255, step 2/255, 50 iterations, 10 random restarts; robust
accuracy = fraction of images correctly classified clean and under the worst restart. Compared:

- thesis_lib `robust_accuracy(..., attack="pgd")` (early stopping per example + continuous batching);
- torchattacks `MultiAttack([PGD] * 10)`: torchattacks' own restart wrapper, which re-attacks only the
  images that earlier restarts failed to break (each restart still runs all 50 steps on all its images);
- torchattacks `PGD` run 10 times over all images, worst case per example (restarts without the wrapper);
- ART `ProjectedGradientDescent(num_random_init=10)` (PyTorch backend; every restart on every image).

The model is a briefly adversarially trained light CNN (ReLU), FGSM-RS "fast" adversarial training
(Wong, Rice, Kolter 2020) on a few thousand CIFAR-10 training images with a small self-contained loop
(so the benchmark does not depend on the training package); it is cached under .cache/bench_attacks.
All methods run in the same process one after the other; timings on a shared machine are noisy, so
compare the printed ratios, and re-run ours last to see the drift.

    python benchmarks/bench_attacks.py                # 3-5 minutes on one core (the first run trains, ~1.5 min)
    python benchmarks/bench_attacks.py --n-test 500 --width 32 --json out.json
    python benchmarks/bench_attacks.py --masking-table  # evidence for the gradient-masking check 7

`--masking-table` instead prints the statistic behind `gradient_masking_report`'s "shattered gradients"
check (median relative error of the first-order margin prediction at h = eps/32, eps/128, eps/512) for
networks at initialisation and for tiny fast-AT-trained ones, with every activation family.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from thesis_lib import build_model  # noqa: E402
from thesis_lib.attacks import predict, robust_accuracy  # noqa: E402
from thesis_lib.utils import hardware_info, seed_everything  # noqa: E402

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _tar_subset(path: str, split: str, per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    """First `per_class` images of each class of a split of the image-folder tarball (fallback loader)."""
    from PIL import Image

    images, labels = [], []
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if len(parts) != 4 or parts[1] != split or not parts[3].endswith(".jpg"):
                if split == "test" and len(parts) > 1 and parts[1] == "train" and images:
                    break  # the test split comes first in the tarball
                continue
            if int(parts[3][:-4]) >= per_class:
                continue
            img = np.asarray(Image.open(io.BytesIO(tar.extractfile(member).read())).convert("RGB"))
            images.append(torch.from_numpy(img.copy()).permute(2, 0, 1))
            labels.append(CLASSES.index(parts[2]))
    if not images:
        raise SystemExit(f"no {split} images found in {path}")
    return torch.stack(images), torch.tensor(labels)


def load_data(n_train: int, n_test: int, root: str | None):
    """CIFAR-10 subsets via thesis_lib.data when it exists, else straight from the offline tarball."""
    try:
        from thesis_lib.data import load_cifar10
    except ImportError:
        load_cifar10 = None
    if load_cifar10 is not None:
        return (*load_cifar10("train", root=root, subset=n_train), *load_cifar10("test", root=root, subset=n_test))
    path = root or os.environ.get("THESIS_DATA") or "/work/shared/data/cifar10-jpeg.tar.gz"
    xtr, ytr = _tar_subset(path, "train", math.ceil(n_train / 10))
    xte, yte = _tar_subset(path, "test", math.ceil(n_test / 10))
    return xtr, ytr, xte, yte


def fast_at(model, x_u8, y, epochs: int, eps: float, lr_max: float, batch_size: int, seed: int):
    """FGSM with a random start, step 1.25 eps; SGD (momentum 0.9, Nesterov), one-cycle lr (protocol, Training)."""
    gen = seed_everything(seed)
    x = x_u8.float() / 255
    opt = torch.optim.SGD(model.param_groups(), lr=lr_max, momentum=0.9, nesterov=True)
    n = len(x)
    total, it = epochs * math.ceil(n / batch_size), 0
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, batch_size):
            b = perm[i : i + batch_size]
            xb, yb = x[b], y[b]
            # random crop (pad 4) and horizontal flip, as tensor ops
            xb = F.pad(xb, (4, 4, 4, 4), mode="reflect")
            dx, dy = torch.randint(0, 9, (2,), generator=gen).tolist()
            xb = xb[:, :, dy : dy + 32, dx : dx + 32]
            if torch.rand(1, generator=gen).item() < 0.5:
                xb = xb.flip(3)
            lr = lr_max * (1 - abs(2 * it / total - 1)) + 1e-4
            for g in opt.param_groups:
                g["lr"] = lr
            delta = ((torch.rand(xb.shape, generator=gen) * 2 - 1) * eps).requires_grad_(True)
            loss = F.cross_entropy(model((xb + delta).clamp(0, 1)), yb)
            (grad,) = torch.autograd.grad(loss, delta)
            delta = (delta + 1.25 * eps * grad.sign()).clamp(-eps, eps).detach()
            loss = F.cross_entropy(model((xb + delta).clamp(0, 1)), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            it += 1
    return model.eval()


def get_model(args, xtr, ytr):
    key = f"light_cnn-relu-w{args.width}-n{len(xtr)}-e{args.epochs}-lr{args.lr}-s{args.seed}"
    cache = ROOT / ".cache" / "bench_attacks" / (hashlib.sha1(key.encode()).hexdigest()[:12] + ".safetensors")
    model = build_model("light_cnn", "relu", width=args.width)
    if cache.is_file() and not args.no_cache:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(cache)))
        return model.eval(), 0.0, True
    t0 = time.perf_counter()
    fast_at(model, xtr, ytr, args.epochs, 8 / 255, args.lr, 128, args.seed)
    seconds = time.perf_counter() - t0
    from safetensors.torch import save_file

    cache.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(cache))
    return model.eval(), seconds, False


def robust_of(model, x, y, x_adv, bs):
    return (predict(model, x, bs).eq(y) & predict(model, x_adv, bs).eq(y)).float().mean().item()


def run_ours(model, x_u8, y, a):
    t0 = time.perf_counter()
    r = robust_accuracy(model, x_u8, y, "pgd", a.eps, a.step, a.steps, a.restarts, a.batch_size, seed=a.seed)
    return r["robust_acc"], time.perf_counter() - t0, r["gradient_evaluations"]


def run_torchattacks_multi(model, x, y, a):
    import torchattacks

    t0 = time.perf_counter()
    atks = [
        torchattacks.PGD(model, eps=a.eps, alpha=a.step, steps=a.steps, random_start=True) for _ in range(a.restarts)
    ]
    atk = torchattacks.MultiAttack(atks) if a.restarts > 1 else atks[0]
    adv = torch.cat([atk(x[i : i + a.batch_size], y[i : i + a.batch_size]) for i in range(0, len(x), a.batch_size)])
    return robust_of(model, x, y, adv, a.batch_size), time.perf_counter() - t0, None


def run_torchattacks_naive(model, x, y, a):
    import torchattacks

    t0 = time.perf_counter()
    atk = torchattacks.PGD(model, eps=a.eps, alpha=a.step, steps=a.steps, random_start=True)
    clean = predict(model, x, a.batch_size).eq(y)
    ok = clean.clone()
    for _ in range(a.restarts):
        adv = torch.cat([atk(x[i : i + a.batch_size], y[i : i + a.batch_size]) for i in range(0, len(x), a.batch_size)])
        ok &= predict(model, adv, a.batch_size).eq(y)
    return ok.float().mean().item(), time.perf_counter() - t0, len(x) * a.steps * a.restarts


def run_art(model, x, y, a):
    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    t0 = time.perf_counter()
    clf = PyTorchClassifier(
        model=model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=tuple(x.shape[1:]),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )
    atk = ProjectedGradientDescent(
        clf,
        norm=np.inf,
        eps=a.eps,
        eps_step=a.step,
        max_iter=a.steps,
        num_random_init=a.restarts,
        batch_size=a.batch_size,
        verbose=False,
    )
    adv = torch.from_numpy(atk.generate(x.numpy(), y=y.numpy())).float()
    return robust_of(model, x, y, adv, a.batch_size), time.perf_counter() - t0, len(x) * a.steps * a.restarts


def masking_table(a, xtr, ytr, xte, yte) -> list[dict]:
    """First-order error (check 7 of the gradient-masking report) across activations, init and trained."""
    from thesis_lib.attacks import first_order_error

    x, y = xte[:100], yte[:100]
    hs = (32, 128, 512)
    rows = []

    def add(kind, arch, act, model):
        errs = [first_order_error(model, x, y, a.eps / d)["median"] for d in hs]
        acc = predict(model, x).eq(y).float().mean().item()
        rows.append(
            {
                "model": kind,
                "arch": arch,
                "activation": act,
                "clean_acc": acc,
                **{f"h=eps/{d}": e for d, e in zip(hs, errs)},
            }
        )
        print(
            f"  {kind:<26} {arch:<14} {act:<9} clean {100 * acc:5.1f}%   "
            + "   ".join(f"eps/{d}: {e:8.4f}" for d, e in zip(hs, errs)),
            flush=True,
        )

    print("median relative error of the first-order margin prediction (float64); report threshold 0.1 at eps/128")
    for arch, opts in (("light_cnn", {"width": 8}), ("light_cnn", {"width": 32}), ("resnet20", {})):
        for act in ("relu", "elu", "swish", "kaf", "kaf_relu", "kwta"):
            torch.manual_seed(a.seed)
            name = arch + (f"-w{opts['width']}" if opts else "")
            add("init", name, act, build_model(arch, act, **opts).eval())
    small_x, small_y = xtr[:500], ytr[:500]
    for act in ("relu", "kaf", "kwta"):
        torch.manual_seed(a.seed)
        m = build_model("light_cnn", act, width=8)
        fast_at(m, small_x, small_y, 8, 8 / 255, a.lr, 64, a.seed)
        add("fast-AT 8 ep, 500 images", "light_cnn-w8", act, m)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-train", type=int, default=2000, help="training images for the fast-AT model")
    p.add_argument("--n-test", type=int, default=200, help="test images attacked")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=0.1, help="peak SGD learning rate of the one-cycle schedule")
    p.add_argument("--width", type=int, default=16, help="light CNN width (thesis: 32)")
    p.add_argument("--eps", type=float, default=8 / 255)
    p.add_argument("--step", type=float, default=2 / 255)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--restarts", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=None, help="data location (default: $THESIS_DATA)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--skip", nargs="*", default=[], choices=["ta_multi", "ta_naive", "art"])
    p.add_argument("--no-cache", action="store_true", help="retrain the model even if cached")
    p.add_argument("--json", default=None, help="also write the results as JSON here")
    p.add_argument("--masking-table", action="store_true", help="print the first-order-error table instead")
    a = p.parse_args(argv)
    os.environ.setdefault("THESIS_NO_PROGRESS", "1")
    if a.threads:
        torch.set_num_threads(a.threads)

    xtr, ytr, xte, yte = load_data(a.n_train, a.n_test, a.data)
    if a.masking_table:
        rows = masking_table(a, xtr, ytr, xte, yte)
        if a.json:
            Path(a.json).write_text(
                json.dumps({"settings": vars(a), "hardware": hardware_info("cpu"), "rows": rows}, indent=2) + "\n"
            )
        return 0
    model, train_s, cached = get_model(a, xtr, ytr)
    x = xte.float() / 255
    clean = predict(model, x).eq(yte).float().mean().item()
    hw = hardware_info("cpu")
    print(f"hardware: {hw['cpu']}, {hw['cpu_count']} CPUs, {hw['torch_threads']} torch threads, torch {hw['torch']}")
    print(
        f"model: light_cnn relu width {a.width}, fast-AT {a.epochs} epochs on {len(xtr)} images "
        f"({'cached' if cached else f'trained in {train_s:.0f} s'}); "
        f"clean accuracy {100 * clean:.1f}% on {len(x)} test images"
    )
    print(
        f"attack: PGD L-inf eps {a.eps * 255:.3g}/255, step {a.step * 255:.3g}/255, "
        f"{a.steps} steps x {a.restarts} restarts, "
        f"batch {a.batch_size}"
    )

    runs = [("thesis_lib", lambda: run_ours(model, xte, yte, a))]
    if "ta_multi" not in a.skip:
        runs.append(("torchattacks MultiAttack", lambda: run_torchattacks_multi(model, x, yte, a)))
    if "ta_naive" not in a.skip:
        runs.append(("torchattacks PGD x restarts", lambda: run_torchattacks_naive(model, x, yte, a)))
    if "art" not in a.skip:
        runs.append(("ART", lambda: run_art(model, x, yte, a)))
    runs.append(("thesis_lib (again)", lambda: run_ours(model, xte, yte, a)))

    # Count every image that goes through the model (attack steps, clean checks, final evaluation), for
    # all methods alike; deep copies of the model (our BatchNorm folding) share the hook and the counter.
    seen = [0]
    model.register_forward_pre_hook(lambda mod, inp: seen.__setitem__(0, seen[0] + inp[0].shape[0]))

    results = []
    for name, fn in runs:
        seen[0] = 0
        acc, secs, evals = fn()
        results.append(
            {
                "method": name,
                "robust_acc": acc,
                "seconds": secs,
                "gradient_evaluations": evals,
                "forward_images": seen[0],
            }
        )
        print(
            f"  {name:<28} robust {100 * acc:6.2f}%   {secs:8.1f} s   {seen[0]:>7} images through the model"
            + (f" ({evals} with gradient)" if evals else ""),
            flush=True,
        )

    # Conservative: the slower of our two runs, and the higher (weaker) of their accuracies.
    ours = max(r["seconds"] for r in results if r["method"].startswith("thesis_lib"))
    ours_acc = max(r["robust_acc"] for r in results if r["method"].startswith("thesis_lib"))
    print("\nratios (baseline seconds / slower thesis_lib run; accuracy difference thesis_lib - baseline):")
    for r in results:
        if not r["method"].startswith("thesis_lib"):
            r["speedup"] = r["seconds"] / ours
            r["acc_diff_points"] = 100 * (ours_acc - r["robust_acc"])
            print(f"  vs {r['method']:<28} {r['speedup']:5.2f}x faster   accuracy {r['acc_diff_points']:+.2f} points")
    if a.json:
        Path(a.json).write_text(
            json.dumps({"settings": vars(a), "hardware": hw, "clean_acc": clean, "results": results}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
