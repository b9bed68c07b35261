"""l-inf attacks (paper Section 2.1, 4.1; Appendix C) over one threat model, and their evaluation.

``attack = make_attack("pgd", eps=0.3, steps=40)`` then ``x_adv = attack(model, x, y)``. Beside the
paper's PGD, M-PGD and FGSM: APGD-CE / APGD-DLR, APGD-T and Square (Croce & Hein 2020; Andriushchenko
et al. 2020) and their ensemble ``autoattack`` (AutoAttack's order, FAB-T not included).
"""

from __future__ import annotations

from typing import Any

from interpretgan.attacks.apgd import APGD, APGD_STEPS, APGDT
from interpretgan.attacks.autoattack import AutoAttack
from interpretgan.attacks.base import LOSSES, PER_EXAMPLE_LOSSES, Attack, LossFn, eval_mode
from interpretgan.attacks.evaluate import evaluate_attacks
from interpretgan.attacks.fgsm import FGSM
from interpretgan.attacks.metrics import AttackResult
from interpretgan.attacks.mpgd import MPGD
from interpretgan.attacks.pgd import PGD
from interpretgan.attacks.square import SQUARE_QUERIES, Square
from interpretgan.attacks.store import AdversarialSet, load_adversarial_set
from interpretgan.errors import ConfigError

#: Attack classes by registry name.
ATTACKS: dict[str, type[Attack]] = {cls.name: cls for cls in (PGD, MPGD, FGSM, APGD, APGDT, Square, AutoAttack)}

#: Iterations when ``steps`` is not given: the paper's PGD-40 (Section 4.1).
DEFAULT_STEPS = 40

_OPTIONS = {"targeted", "loss", "clip_min", "clip_max", "generator", "restarts"}
#: The options of the parameter-free attacks beyond the common ones.
_OWN_OPTIONS: dict[type[Attack], set[str]] = {
    APGD: {"loss", "targeted", "rho"},
    APGDT: {"targets", "rho"},
    Square: {"targeted", "queries", "p_init"},
    AutoAttack: {"targets", "queries", "p_init"},
}
_COMMON = {"clip_min", "clip_max", "generator", "restarts"}


def _make_parameter_free(cls: type[Attack], eps: float, alpha: float | None, steps: int | None,
                         random_start: bool | None, kw: dict[str, Any]) -> Attack:
    """APGD, APGD-T, Square or AutoAttack: they set their own step sizes, so ``alpha`` is refused."""
    name = cls.name
    if alpha is not None:
        raise ConfigError(f"attack '{name}' sets its own step size (it needs no tuning); leave alpha unset")
    extra = sorted(set(kw) - _OWN_OPTIONS[cls] - _COMMON)
    if extra:
        raise ConfigError(f"attack '{name}' takes no option '{extra[0]}'; its options are: eps, steps, "
                          f"{', '.join(sorted(_OWN_OPTIONS[cls] | _COMMON))}")
    if cls is Square:
        if random_start is not None:
            raise ConfigError("attack 'square' draws its own start (stripes of +-eps); leave random_start unset")
        if steps is not None and "queries" in kw:
            raise ConfigError("attack 'square' counts its steps in queries; give steps or queries, not both")
        queries = kw.pop("queries", SQUARE_QUERIES if steps is None else steps)
        return Square(eps, queries, **kw)
    steps = APGD_STEPS if steps is None else steps
    if cls is AutoAttack:
        if random_start is not None:
            raise ConfigError("attack 'autoattack' fixes the starts of its components; leave random_start unset")
        return AutoAttack(eps, steps, **kw)
    return cls(eps, steps, random_start=True if random_start is None else random_start, **kw)


def make_attack(
    name: str,
    *,
    eps: float,
    alpha: float | None = None,
    steps: int | None = None,
    random_start: bool | None = None,
    **kw: Any,
) -> Attack:
    """Build the attack registered as ``name`` (see :data:`ATTACKS`).

    Defaults for pgd/mpgd: ``steps=40``, ``alpha=2.5 * eps / steps`` (Madry et al.'s rule, which
    lets the iterate cross the ball), ``random_start=True``. FGSM is fixed (one step of size
    ``eps`` from ``x``): giving it other ``steps``/``alpha``/``random_start`` is an error.
    Other keywords (``targeted``, ``loss``, ``clip_min``, ``clip_max``, ``generator``, ``restarts``)
    go to the constructor.

    The parameter-free attacks take no ``alpha``: ``apgd`` (``loss`` ce/dlr/cw, ``rho``; ``steps``
    default 100), ``apgd-t`` (``targets`` default 9), ``square`` (``steps`` or ``queries``: its
    query budget, default 5,000; ``p_init``) and ``autoattack`` (``steps`` of each APGD,
    ``targets``, ``queries``, ``p_init``). Bad names or settings raise
    :class:`~interpretgan.errors.ConfigError`.
    """
    if name not in ATTACKS:
        raise ConfigError(f"unknown attack '{name}'; valid attacks are: {', '.join(ATTACKS)}")
    if ATTACKS[name] in _OWN_OPTIONS:
        return _make_parameter_free(ATTACKS[name], eps, alpha, steps, random_start, kw)
    unknown = sorted(set(kw) - _OPTIONS)
    if unknown:
        raise ConfigError(
            f"unknown attack option '{unknown[0]}'; valid options are: eps, alpha, steps, random_start, "
            f"{', '.join(sorted(_OPTIONS))}"
        )
    cls = ATTACKS[name]
    if cls is FGSM:
        if (steps is not None and steps != 1) or (alpha is not None and alpha != eps) or random_start:
            raise ConfigError(
                "attack 'fgsm' is one step of size eps from x; leave steps, alpha and random_start unset (or use 'pgd')"
            )
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
    "APGD",
    "APGDT",
    "APGD_STEPS",
    "ATTACKS",
    "AdversarialSet",
    "Attack",
    "AttackResult",
    "AutoAttack",
    "DEFAULT_STEPS",
    "FGSM",
    "LOSSES",
    "LossFn",
    "MPGD",
    "PER_EXAMPLE_LOSSES",
    "PGD",
    "SQUARE_QUERIES",
    "Square",
    "eval_mode",
    "evaluate_attacks",
    "load_adversarial_set",
    "make_attack",
]
