"""l-inf attacks (paper Section 2.1, 4.1; Appendix C) over one threat model, and their evaluation.

``attack = make_attack("pgd", eps=0.3, steps=40)`` then ``x_adv = attack(model, x, y)``.
"""

from __future__ import annotations

from typing import Any

from interpretgan.attacks.base import LOSSES, Attack, LossFn, eval_mode
from interpretgan.attacks.evaluate import (
    AdversarialSet,
    AttackResult,
    evaluate_attacks,
    load_adversarial_set,
)
from interpretgan.attacks.fgsm import FGSM
from interpretgan.attacks.mpgd import MPGD
from interpretgan.attacks.pgd import PGD
from interpretgan.errors import ConfigError

#: Attack classes by registry name.
ATTACKS: dict[str, type[Attack]] = {cls.name: cls for cls in (PGD, MPGD, FGSM)}

#: Iterations when ``steps`` is not given: the paper's PGD-40 (Section 4.1).
DEFAULT_STEPS = 40

_OPTIONS = {"targeted", "loss", "clip_min", "clip_max", "generator", "restarts"}


def make_attack(
    name: str,
    *,
    eps: float,
    alpha: float | None = None,
    steps: int | None = None,
    random_start: bool | None = None,
    **kw: Any,
) -> Attack:
    """Build the attack registered as ``name`` (``"pgd"``, ``"mpgd"`` or ``"fgsm"``).

    Defaults for pgd/mpgd: ``steps=40``, ``alpha=2.5 * eps / steps`` (Madry et al.'s rule, which
    lets the iterate cross the ball), ``random_start=True``. FGSM is fixed (one step of size
    ``eps`` from ``x``): giving it other ``steps``/``alpha``/``random_start`` is an error.
    Other keywords (``targeted``, ``loss``, ``clip_min``, ``clip_max``, ``generator``, ``restarts``)
    go to the constructor. Bad names or settings raise :class:`~interpretgan.errors.ConfigError`.
    """
    if name not in ATTACKS:
        raise ConfigError(f"unknown attack '{name}'; valid attacks are: {', '.join(ATTACKS)}")
    unknown = sorted(set(kw) - _OPTIONS)
    if unknown:
        raise ConfigError(f"unknown attack option '{unknown[0]}'; valid options are: eps, alpha, steps, random_start, {', '.join(sorted(_OPTIONS))}")
    cls = ATTACKS[name]
    if cls is FGSM:
        if (steps is not None and steps != 1) or (alpha is not None and alpha != eps) or random_start:
            raise ConfigError("attack 'fgsm' is one step of size eps from x; leave steps, alpha and random_start unset (or use 'pgd')")
        kw.pop("generator", None)  # FGSM draws nothing
        if kw.pop("restarts", 1) != 1:
            raise ConfigError("attack 'fgsm' has no random start, so restarts would repeat it; leave restarts at 1")
        return FGSM(eps, **kw)
    steps = DEFAULT_STEPS if steps is None else steps
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"attack steps must be an integer >= 1, got {steps!r}")
    if alpha is None:
        alpha = 2.5 * eps / steps if isinstance(eps, (int, float)) and eps > 0 else 0.0
    random_start = True if random_start is None else random_start
    return cls(eps, alpha, steps, random_start=random_start, **kw)


__all__ = [
    "ATTACKS",
    "DEFAULT_STEPS",
    "FGSM",
    "LOSSES",
    "MPGD",
    "PGD",
    "AdversarialSet",
    "Attack",
    "AttackResult",
    "LossFn",
    "eval_mode",
    "evaluate_attacks",
    "load_adversarial_set",
    "make_attack",
]
