"""Captum baselines (Section 4.1): the only package that imports Captum.

``attribute`` computes DeepLIFT, saliency, input x gradient, integrated gradients and occlusion
maps (:mod:`interpretgan.pipeline.baselines` draws them beside the InterpretGAN explanations, Fig. 3 and 5);
``crosscheck_with_captum`` compares our PGD with ``captum.robust.PGD``.
"""

from interpretgan.baselines.attributions import METHODS, attribute
from interpretgan.baselines.crosscheck import crosscheck_with_captum

__all__ = ["METHODS", "attribute", "crosscheck_with_captum"]
