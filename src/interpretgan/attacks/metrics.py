"""What an attack did to a labelled set: robust accuracy, per-class accuracy, success rate and the label
transitions of Appendix D (Fig. 7), from true labels and predictions."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor


@dataclass
class AttackResult:
    """What one attack did to one labelled set (all fractions in [0, 1]).

    Attributes:
        name: the attack's name in the evaluation.
        accuracy: fraction of adversarial examples classified as their true label.
        per_class_accuracy: the same per true class, index = class; ``None`` for a class with no
            example.
        success_rate: fraction of the originally (clean) correct examples whose adversarial
            example is misclassified; 0.0 when no example is originally correct.
        n: number of examples.
        transition: ``num_classes x num_classes`` counts, row = true label, column = prediction on
            the adversarial example, over all examples (Appendix D, Fig. 7).
        most_frequent_wrong: per true class with at least one misclassified adversarial example,
            the wrong label predicted most often (ties: the smallest label):
            ``{"label": int, "count": int, "fraction": count / examples of the class,
            "fraction_of_wrong": count / misclassified examples of the class}``.
            Classes with no misclassified example are absent.
    """

    name: str
    accuracy: float
    per_class_accuracy: list[float | None]
    success_rate: float
    n: int
    transition: list[list[int]]
    most_frequent_wrong: dict[int, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form (JSON turns the int keys of ``most_frequent_wrong`` into strings)."""
        return asdict(self)


def summarize_predictions(name: str, y: Tensor, pred: Tensor, clean_correct: Tensor, num_classes: int) -> AttackResult:
    """:class:`AttackResult` from true labels ``y`` ``(N,)``, predictions ``pred`` ``(N,)`` and the
    clean-correct mask ``clean_correct`` ``(N,)`` bool (all on the same device)."""
    k = num_classes
    n = int(y.numel())
    correct = pred == y
    transition = torch.bincount(y * k + pred, minlength=k * k).view(k, k).cpu()
    class_counts = transition.sum(1)
    diag = transition.diagonal()
    per_class = [None if int(c) == 0 else float(d) / int(c) for d, c in zip(diag.tolist(), class_counts.tolist())]
    n_clean = int(clean_correct.sum())
    flipped = int((clean_correct & ~correct).sum())
    most_frequent_wrong: dict[int, dict[str, Any]] = {}
    for c in range(k):
        wrong = transition[c].clone()
        wrong[c] = 0
        n_wrong = int(wrong.sum())
        if n_wrong == 0:
            continue
        label = int(torch.argmax(wrong))  # first maximum: the smallest label on ties
        count = int(wrong[label])
        most_frequent_wrong[c] = {
            "label": label,
            "count": count,
            "fraction": count / int(class_counts[c]),
            "fraction_of_wrong": count / n_wrong,
        }
    return AttackResult(
        name=name,
        accuracy=float(correct.sum()) / n if n else 0.0,
        per_class_accuracy=per_class,
        success_rate=flipped / n_clean if n_clean else 0.0,
        n=n,
        transition=transition.tolist(),
        most_frequent_wrong=most_frequent_wrong,
    )
