"""Record what goes into and comes out of every activation layer (forward hooks).

Thesis chapter 4 compares the distributions of pre-activations (the inputs of the activation
functions) and activations for clean and adversarial images. `ActivationCapture` hooks
`model.activation_modules()` for the duration of a `with` block and always removes its hooks, also
when the block raises. `reduce` keeps memory small: it is applied to every batch of every layer
before storing (e.g. pick one neuron, or average each filter over space).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

__all__ = ["ActivationCapture", "collect_activations", "activation_layers"]

Reduce = Callable[[int, torch.Tensor], torch.Tensor]


def activation_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(qualified name, module) of the model's activation layers, in forward order.

    Uses `model.activation_modules()` (every thesis model has it); for other models, every
    submodule with a `slope_bound` method (the project's activation interface).
    """
    mods = (
        model.activation_modules()
        if hasattr(model, "activation_modules")
        else [m for m in model.modules() if hasattr(m, "slope_bound") and m is not model]
    )
    names = {id(m): n for n, m in model.named_modules()}
    return [(names.get(id(m), f"act{i}"), m) for i, m in enumerate(mods)]


class ActivationCapture:
    """Context manager storing inputs (pre-activations) and/or outputs of the activation layers.

    with ActivationCapture(model) as cap:
        model(x)
    cap.inputs[i], cap.outputs[i]: tensors (batches concatenated along dim 0) of layer i;
    cap.names[i]: its qualified module name; cap.modules[i]: the module.

    Tensors are detached and moved to `store_device` (CPU by default). `reduce(i, t)` maps a
    batch t of layer i to what is kept (default: everything).
    """

    def __init__(
        self,
        model: nn.Module,
        inputs: bool = True,
        outputs: bool = True,
        reduce: Reduce | None = None,
        store_device: str | torch.device = "cpu",
        layers: Sequence[int] | None = None,
    ):
        found = activation_layers(model)
        if not found:
            raise ValueError(f"{type(model).__name__} has no activation modules to capture")
        keep = range(len(found)) if layers is None else list(layers)
        self.names = [found[i][0] for i in keep]
        self.modules = [found[i][1] for i in keep]
        self._want_in, self._want_out = bool(inputs), bool(outputs)
        self._reduce = reduce
        self._device = torch.device(store_device)
        self._handles: list = []
        self._in: list[list[torch.Tensor]] = [[] for _ in self.modules]
        self._out: list[list[torch.Tensor]] = [[] for _ in self.modules]

    def _store(self, i: int, t: torch.Tensor) -> torch.Tensor:
        t = t.detach()
        if self._reduce is not None:
            t = self._reduce(i, t)
        return t.to(self._device, copy=True)

    def _hook(self, i: int):
        def hook(module, args, output):
            if self._want_in:
                self._in[i].append(self._store(i, args[0]))
            if self._want_out:
                self._out[i].append(self._store(i, output))

        return hook

    def __enter__(self) -> ActivationCapture:
        try:
            for i, m in enumerate(self.modules):
                self._handles.append(m.register_forward_hook(self._hook(i)))
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def remove(self) -> None:
        """Remove every hook this capture registered (idempotent)."""
        while self._handles:
            self._handles.pop().remove()

    def clear(self) -> None:
        """Forget what was recorded (hooks stay)."""
        self._in = [[] for _ in self.modules]
        self._out = [[] for _ in self.modules]

    @staticmethod
    def _cat(chunks: list[list[torch.Tensor]]) -> list[torch.Tensor | None]:
        return [torch.cat(c) if c else None for c in chunks]

    @property
    def inputs(self) -> list[torch.Tensor | None]:
        return self._cat(self._in)

    @property
    def outputs(self) -> list[torch.Tensor | None]:
        return self._cat(self._out)


@torch.no_grad()
def collect_activations(
    model: nn.Module,
    x: torch.Tensor,
    batch_size: int = 256,
    inputs: bool = True,
    outputs: bool = True,
    reduce: Reduce | None = None,
    device=None,
) -> dict:
    """Run `x` (N x 3 x H x W in [0, 1], float or uint8) through `model` in eval mode and capture.

    Returns {"names": [...], "inputs": [tensor per layer], "outputs": [...], "logits": N x K}.
    The model's train/eval state is restored afterwards.
    """
    from ..utils import check_model_device

    dev = check_model_device(model, device)
    was_training = model.training
    model.eval()
    logits = []
    try:
        with ActivationCapture(model, inputs=inputs, outputs=outputs, reduce=reduce) as cap:
            for start in range(0, len(x), batch_size):
                xb = x[start : start + batch_size].to(dev)
                xb = xb.float() / 255 if xb.dtype == torch.uint8 else xb.float()
                logits.append(model(xb).float().cpu())
    finally:
        model.train(was_training)
    return {
        "names": cap.names,
        "modules": cap.modules,
        "inputs": cap.inputs if inputs else None,
        "outputs": cap.outputs if outputs else None,
        "logits": torch.cat(logits),
    }
