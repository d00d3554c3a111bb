"""thesis_lib: code behind "Robustness of Deep Neural Networks Using Trainable Activation Functions".

Activations (KAF, k-WTA, fixed), the thesis's models, CIFAR-10 data, training (standard, fast
adversarial), attacks (FGSM, PGD, AutoAttack) and analysis. Importing does no work beyond imports.
"""

from .activations import list_activations, make_activation
from .models import build_model, list_models

__all__ = ["make_activation", "list_activations", "build_model", "list_models", "load_pretrained"]


def load_pretrained(experiment: str, key: str, profile: str = "cpu", results_dir=None, device="cpu"):
    """Committed trained weights, e.g. `load_pretrained("resnet20_at", "kaf", profile="cpu")`.

    See `thesis_lib.reporting.pretrained`, which finds them by experiment, run key and profile.
    """
    from .reporting.pretrained import load_pretrained as load

    return load(experiment, key, profile, results_dir, device)


__version__ = "0.1.0"
