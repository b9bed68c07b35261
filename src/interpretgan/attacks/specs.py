"""Attacks by name: ``"pgd-100"``, ``"mpgd-40"``, ``"fgsm"``, ``"apgd-ce"``, ``"square-1000"``, ``"autoattack"``
and the paper's radius and step per dataset (Section 4)."""

from __future__ import annotations

import re

from interpretgan.attacks import APGD_STEPS, SQUARE_QUERIES, Attack, make_attack
from interpretgan.errors import ConfigError

#: The paper's threat models (Section 4.1, Appendix C): eps, PGD step size and steps per dataset.
ATTACK_DEFAULTS: dict[str, dict[str, float]] = {
    "mnist": dict(eps=0.3, alpha=0.01, steps=40),
    "mnist-sample": dict(eps=0.3, alpha=0.01, steps=40),
    "cifar10": dict(eps=8 / 255, alpha=2 / 255, steps=20),
    "celeba": dict(eps=2 / 255, alpha=0.5 / 255, steps=20),
}


_SPEC = re.compile(r"^(pgd|mpgd|fgsm|apgd-ce|apgd-dlr|apgd-t|square|autoattack)(?:-?(\d+))?$")


#: A reduced ensemble: fewer APGD iterations and/or Square queries (``autoattack-apgd10-square100``).
_REDUCED_AUTOATTACK = re.compile(r"^autoattack(?:-apgd(\d+))?(?:-square(\d+))?$")


ATTACK_NAMES_EXPECTED = ("pgd, mpgd, fgsm, apgd-ce, apgd-dlr, apgd-t, square or autoattack, optionally with steps "
             "(pgd-100) or queries (square-1000)")


#: The result name of the ensemble: AutoAttack's standard order without its FAB-T, said in the name
#: so that a table never passes it off as the full AutoAttack.
AUTOATTACK_NAME = "autoattack-nofab"


def parse_attack_spec(spec: str, *, eps: float, alpha: float, steps: int, random_start: bool = True,
                      restarts: int = 1, loss: str = "ce") -> tuple[str, Attack]:
    """``"pgd"``, ``"pgd-100"``, ``"mpgd-40"``, ``"fgsm"``, ``"apgd-ce"``, ``"square-1000"``, ``"autoattack"`` ...
    -> ``(name, attack)``.

    A number after pgd/mpgd sets its steps (else ``steps``); the name is ``pgd100``-style, with
    ``-cw`` for the margin loss and ``-r5`` for five restarts (FGSM, which has no random start,
    takes no restarts), so that variants of one attack keep apart in the same folder.
    The parameter-free attacks ignore ``alpha`` and ``steps``: ``apgd-ce``, ``apgd-dlr`` and
    ``apgd-t`` take AutoAttack's 100 iterations unless a number follows (``apgd-ce100``), ``square``
    its 5,000 queries (``square5000``); ``autoattack`` is the ensemble APGD-CE, APGD-T, Square with
    AutoAttack's settings, named ``autoattack-nofab`` since FAB-T is not part of it
    (``autoattack-apgd10-square100``: a reduced ensemble for quick runs, named
    ``autoattack-nofab-apgd10-square100``). Their losses
    are part of the name, so ``loss`` must stay ``"ce"``.
    """
    reduced = _REDUCED_AUTOATTACK.match(spec.strip().lower())
    if reduced and any(reduced.groups()):
        return _reduced_autoattack(spec, reduced, eps=eps, restarts=restarts, loss=loss)
    m = _SPEC.match(spec.strip().lower())
    if not m:
        raise ConfigError(f"--attack '{spec}' is not an attack; expected {ATTACK_NAMES_EXPECTED}")
    kind, n = m.group(1), m.group(2)
    if kind in ("pgd", "mpgd", "fgsm"):
        suffix = "" if loss == "ce" else f"-{loss}"
        if kind == "fgsm":
            if n not in (None, "1"):
                raise ConfigError(f"--attack '{spec}': FGSM is a single step; write 'fgsm'")
            return "fgsm" + suffix, make_attack("fgsm", eps=eps, loss=loss)
        k = int(n) if n else steps
        if restarts > 1:
            suffix += f"-r{restarts}"
        return f"{kind}{k}{suffix}", make_attack(kind, eps=eps, alpha=alpha, steps=k, random_start=random_start,
                                                 loss=loss, restarts=restarts)
    if loss != "ce":
        raise ConfigError(
            f"--loss {loss} applies to pgd, mpgd and fgsm; '{kind}' has its own loss, so leave --loss at ce"
        )
    suffix = f"-r{restarts}" if restarts > 1 else ""
    if kind == "autoattack":
        if n is not None:
            raise ConfigError(f"--attack '{spec}': autoattack runs with AutoAttack's settings; write 'autoattack', "
                              "or 'autoattack-apgd10-square100' for fewer APGD iterations and Square queries")
        return AUTOATTACK_NAME + suffix, make_attack("autoattack", eps=eps, restarts=restarts)
    if kind == "square":
        q = int(n) if n else SQUARE_QUERIES
        return f"square{q}{suffix}", make_attack("square", eps=eps, queries=q, restarts=restarts)
    k = int(n) if n else APGD_STEPS
    if kind == "apgd-t":
        return f"apgd-t{k}{suffix}", make_attack(
            "apgd-t", eps=eps, steps=k, random_start=random_start, restarts=restarts
        )
    return f"{kind}{k}{suffix}", make_attack("apgd", eps=eps, steps=k, loss=kind.split("-")[1],
                                             random_start=random_start, restarts=restarts)


def _reduced_autoattack(spec: str, m: re.Match, *, eps: float, restarts: int, loss: str) -> tuple[str, Attack]:
    """``autoattack-apgd<N>-square<Q>``: the ensemble with ``N`` APGD iterations and ``Q`` Square queries, named
    ``autoattack-nofab-apgd<N>-square<Q>`` so that a table never passes it off as AutoAttack's own settings."""
    if loss != "ce":
        raise ConfigError(
            f"--loss {loss} applies to pgd, mpgd and fgsm; '{spec}' has its own losses, so leave --loss at ce"
        )
    steps = int(m.group(1)) if m.group(1) else APGD_STEPS
    queries = int(m.group(2)) if m.group(2) else SQUARE_QUERIES
    if steps < 1 or queries < 1:
        raise ConfigError(f"--attack '{spec}': APGD iterations and Square queries must be at least 1")
    name = AUTOATTACK_NAME
    if (steps, queries) != (APGD_STEPS, SQUARE_QUERIES):
        name += f"-apgd{steps}-square{queries}"
    return name + (f"-r{restarts}" if restarts > 1 else ""), make_attack("autoattack", eps=eps, steps=steps,
                                                                        queries=queries, restarts=restarts)


def is_autoattack(name: str) -> bool:
    """Whether the result name ``name`` (from :func:`parse_attack_spec`) is AutoAttack's ensemble, full or reduced."""
    return name.startswith(AUTOATTACK_NAME)
