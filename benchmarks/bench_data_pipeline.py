"""Benchmark: the DeviceLoader pipeline vs a plain torchvision DataLoader + transforms loop.

Both pipelines produce the same thing: shuffled batches of CIFAR-10 training images, augmented
with pad-4 random crop + horizontal flip, as float tensors in [0, 1] on the training device.
  - device:      thesis_lib.data.DeviceLoader (uint8 split on the device, one gather per batch);
  - torchvision: a Dataset returning PIL images (as torchvision.datasets.CIFAR10 does) with
                 transforms RandomCrop(32, padding=4) + RandomHorizontalFlip() + ToTensor(),
                 batched by torch.utils.data.DataLoader with --workers worker processes.
Two measurements, each in images/second:
  - data only: iterate over every batch of the set (the pipeline's own cost);
  - training:  the same loop feeding a light_cnn/relu Adam step (what a run sees).
The pipelines are interleaved (device, torchvision, device, ...) `--repeats` times and medians are
reported, so load from other processes hits both alike; ratios are device / torchvision.

    python benchmarks/bench_data_pipeline.py [--data PATH] [--n 2048] [--workers 0 2] [--repeats 3]
                                             [--device auto] [--threads N] [--train-batches 8] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from thesis_lib import build_model
from thesis_lib.data import DeviceLoader, load_cifar10
from thesis_lib.utils import get_device, hardware_info


class PILDataset(torch.utils.data.Dataset):
    """What torchvision.datasets.CIFAR10 does per item: HWC uint8 array -> PIL image -> transform."""

    def __init__(self, images_u8: torch.Tensor, labels: torch.Tensor, transform):
        self.data = images_u8.permute(0, 2, 3, 1).contiguous().numpy()
        self.targets = labels.tolist()
        self.transform = transform

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.data[i])), self.targets[i]


def torchvision_batches(images, labels, batch_size, workers, device, seed):
    from torchvision import transforms

    tf = transforms.Compose(
        [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor()]
    )
    loader = torch.utils.data.DataLoader(
        PILDataset(images, labels, tf),
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        generator=torch.Generator().manual_seed(seed),
        persistent_workers=False,
    )
    for x, y in loader:
        yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def device_batches(images, labels, batch_size, device, seed):
    yield from DeviceLoader(images, labels, batch_size=batch_size, shuffle=True, augment=True, device=device, seed=seed)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def data_only(make, device) -> float:
    _sync(device)
    t, n = time.perf_counter(), 0
    for x, _ in make():
        n += len(x)
    _sync(device)
    return n / (time.perf_counter() - t)


def training(make, device, max_batches: int) -> float:
    torch.manual_seed(0)
    model = build_model("light_cnn", "relu").to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    n, t = 0, None
    for i, (x, y) in enumerate(make()):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i == 0:  # the first step pays one-off costs (allocator, worker start): not timed
            _sync(device)
            t = time.perf_counter()
        else:
            n += len(x)
        if i >= max_batches:
            break
    _sync(device)
    return n / (time.perf_counter() - t)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="CIFAR-10 location (default: $THESIS_DATA)")
    p.add_argument("--n", type=int, default=2048, help="training images (stratified subset)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader worker counts to compare")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--train-batches", type=int, default=8, help="timed training steps per measurement")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    images, labels = load_cifar10("train", args.data, subset=args.n)
    pipelines = {"device": lambda s: device_batches(images, labels, args.batch_size, device, s)}
    for w in args.workers:
        pipelines[f"torchvision(workers={w})"] = lambda s, w=w: torchvision_batches(
            images, labels, args.batch_size, w, device, s
        )
    results = {name: {"data_only": [], "training": []} for name in pipelines}
    for r in range(args.repeats):
        for name, make in pipelines.items():  # interleaved: load from other processes hits all alike
            results[name]["data_only"].append(data_only(lambda: make(r), device))
            results[name]["training"].append(training(lambda: make(r), device, args.train_batches))

    med = {name: {k: statistics.median(v) for k, v in res.items()} for name, res in results.items()}
    print(
        f"device {device}, {torch.get_num_threads()} threads; {args.n} images, batch {args.batch_size}, "
        f"{args.repeats} repeats (medians, images/s)"
    )
    print(f"{'pipeline':26s} {'data only':>12s} {'training':>10s}")
    for name, m in med.items():
        print(f"{name:26s} {m['data_only']:12.0f} {m['training']:10.0f}")
    for name in pipelines:
        if name != "device":
            print(
                f"ratio device / {name}: data only {med['device']['data_only'] / med[name]['data_only']:.1f}x, "
                f"training {med['device']['training'] / med[name]['training']:.2f}x"
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"medians": med, "samples": results, "args": vars(args), "hardware": hardware_info(device)}, f, indent=2
            )


if __name__ == "__main__":
    main()
