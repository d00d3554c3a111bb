from .context import attack_mode
from .fgsm import fgsm
from .pgd import PGDResult, pgd, run_pgd
