"""Training for the thesis's experiments (protocol "Training").

- `TrainConfig`: every hyperparameter, with per-model defaults (`resolved()`).
- `train(config, out_dir=None, resume=False, data=None)` -> metrics dict; run folder with
  config.json, history.jsonl, norms.jsonl, checkpoints, model.safetensors, metrics.json.
- `lr_find(config, out_dir=None, ...)` -> learning-rate range test with suggested bounds.
- `load_run(run_dir, device=None)` -> (model in eval mode, metrics).
- `one_cycle_lr(step, total_steps, lr_min, lr_max, decay_steps=0)` -> the schedule.
- `fgsm_rs_perturb` (Wong et al. 2020), `evaluate`, `find_nonfinite`, `parameter_norms`.
"""

from .adversarial import fgsm_rs_perturb, pgd_perturb
from .config import METHODS, OPTIMIZERS, SCHEDULES, THESIS_LR_BOUNDS, TrainConfig
from .lr_finder import FLAT_DROP, loss_drop, lr_find, smooth_losses, suggest_lr_bounds
from .monitor import find_nonfinite, parameter_norms
from .schedule import one_cycle_lr, schedule_lr
from .trainer import evaluate, load_run, train

__all__ = [
    "TrainConfig",
    "train",
    "lr_find",
    "load_run",
    "one_cycle_lr",
    "schedule_lr",
    "evaluate",
    "fgsm_rs_perturb",
    "pgd_perturb",
    "find_nonfinite",
    "parameter_norms",
    "suggest_lr_bounds",
    "smooth_losses",
    "loss_drop",
    "FLAT_DROP",
    "METHODS",
    "OPTIMIZERS",
    "SCHEDULES",
    "THESIS_LR_BOUNDS",
]
