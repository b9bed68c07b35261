"""Classifiers with named layer taps: ``smallcnn`` (MNIST), ``vgg16``, ``wrn34_10``, and any ``nn.Module``
through :func:`tap`."""

from interpretgan.models import smallcnn as _smallcnn  # noqa: F401  (registers)
from interpretgan.models import vgg as _vgg  # noqa: F401
from interpretgan.models import wideresnet as _wideresnet  # noqa: F401
from interpretgan.models.base import Normalize, TappedModel, make_pool
from interpretgan.models.registry import create_model, list_models, model_class, register
from interpretgan.models.wrap import TappedNet, tap

__all__ = [
    "Normalize",
    "TappedModel",
    "TappedNet",
    "create_model",
    "list_models",
    "make_pool",
    "model_class",
    "register",
    "tap",
]
