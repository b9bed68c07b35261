"""InterpretGAN (Section 3): per-layer explainers ``x_hat_i = G_i(C_i(f_pre_i(x)))`` of a frozen classifier.

``progan`` (the progressive G and D), ``compression`` (C_i, Tables 4-5), ``losses`` (WGAN-GP and
the interpretability term, Eq. 2-4), ``explainer`` (one layer's C_i and G_i, its schedule and files),
``loop`` (one training loop for all layers, in memory or into a store that checkpoints and resumes),
``metrics`` (consistency, Frechet distance, adversarial drift) and
``show`` (the Fig. 3 grid).

    cfg = resolve_explain_config("mnist", "cpu", {"layers": ["conv2", "fc1"]})
    res = train_explainers(f, train_images, cfg)   # in memory: no run folder
    x_hat = explain(f, res["explainers"], x)       # {layer: explanations of the images x}

"""

from interpretgan.explain.compression import CompressionNet, build_compression, compression_configs
from interpretgan.explain.explainer import Explainer, Schedule, detect_collapse, explain, load_explainer
from interpretgan.explain.loop import ExplainStore, MemoryStore, train_explainers
from interpretgan.explain.losses import critic_loss, generator_loss, gradient_penalty, interpretability_loss
from interpretgan.explain.metrics import (
    adversarial_drift,
    evaluate_explainers,
    explanation_predictions,
    feature_statistics,
    frechet_distance,
    real_floor,
)
from interpretgan.explain.progan import ProDiscriminator, ProGenerator
from interpretgan.explain.show import explanation_grid

__all__ = [
    "CompressionNet",
    "ExplainStore",
    "Explainer",
    "MemoryStore",
    "ProDiscriminator",
    "ProGenerator",
    "Schedule",
    "adversarial_drift",
    "build_compression",
    "compression_configs",
    "critic_loss",
    "detect_collapse",
    "evaluate_explainers",
    "explain",
    "explanation_grid",
    "explanation_predictions",
    "feature_statistics",
    "frechet_distance",
    "generator_loss",
    "gradient_penalty",
    "interpretability_loss",
    "load_explainer",
    "real_floor",
    "train_explainers",
]
