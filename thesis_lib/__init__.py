"""thesis_lib: code behind "Robustness of Deep Neural Networks Using Trainable Activation Functions".

Activations (KAF, k-WTA, fixed), the thesis's models, CIFAR-10 data, training (standard, fast
adversarial), attacks (FGSM, PGD, AutoAttack) and analysis. Importing does no work beyond imports.
"""

from .activations import list_activations, make_activation
from .models import build_model, list_models

__all__ = ["make_activation", "list_activations", "build_model", "list_models"]
__version__ = "0.1.0"
