"""The pretrained zoo: MNIST classifiers and their explainers, shipped inside the package.

Each entry was trained by ``interpretgan reproduce mnist --preset cpu`` on the full MNIST training
set and carries a provenance record (the command, the commit, the preset, and the figures measured
on the full MNIST test set and on the embedded sample). Every file is checked against the sha256 in
that record before anything is built from it.

>>> from interpretgan import pretrained
>>> f = pretrained.load("mnist-smallcnn-max-trades+atta")                     # a TappedModel, eval mode
>>> f, explainers = pretrained.load("mnist-smallcnn-max-trades+atta-explainers")  # {layer: Explainer}

On the command line, ``pretrained:NAME`` stands for a run folder wherever a command takes one
(:func:`interpretgan.pipeline.zoo.materialize` writes that folder once, under the runs root).
"""

from interpretgan.pipeline.zoo import (
    PREFIX,
    ZOO_DIR,
    is_pretrained,
    list_pretrained,
    load,
    materialize,
    provenance,
    verify,
)

__all__ = ["PREFIX", "ZOO_DIR", "is_pretrained", "list_pretrained", "load", "materialize", "provenance", "verify"]
