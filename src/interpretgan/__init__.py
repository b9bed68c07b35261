"""interpretgan: InterpretGAN explanations and per-layer vulnerability diagnosis.

Implements "Understanding and Diagnosing Vulnerability under Adversarial Attacks"
(InterpretGAN): classifiers with named layer taps, l-inf attacks and TRADES/ATTA adversarial
training, per-layer explainers (compression net + progressive GAN), and the per-layer
accuracy/vulnerability diagnosis of Eq. 5.
"""

from interpretgan.errors import ConfigError, DataError, InterpretganError, RunError

__version__ = "0.1.0"
__all__ = ["ConfigError", "DataError", "InterpretganError", "RunError", "__version__"]
