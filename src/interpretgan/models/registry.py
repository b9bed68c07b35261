"""Models registered by name and created by one factory (timm-style)."""

from __future__ import annotations

from collections.abc import Callable

from interpretgan.config import is_reference
from interpretgan.errors import ConfigError
from interpretgan.models.base import TappedModel
from interpretgan.models.external import external_model

_REGISTRY: dict[str, type[TappedModel]] = {}


def register(name: str) -> Callable[[type[TappedModel]], type[TappedModel]]:
    def deco(cls: type[TappedModel]) -> type[TappedModel]:
        _REGISTRY[name] = cls
        return cls

    return deco


def list_models() -> list[str]:
    """Registered model names."""
    return sorted(_REGISTRY)


def model_class(name: str) -> type[TappedModel]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown model '{name}'; registered models are: {', '.join(list_models())}, "
                          "or a reference path/to/file.py:build or package.module:build") from None


def create_model(name: str, **kwargs) -> TappedModel:
    """Build a registered classifier, or a user's (``file.py:build`` / ``package.module:build``,
    :func:`interpretgan.models.external.external_model`); ``kwargs`` are its constructor's keyword arguments."""
    if is_reference(name):
        try:
            return external_model(name, **kwargs)
        except TypeError as err:
            raise ConfigError(
                f"bad options for model '{name}': {(str(err).splitlines() or [type(err).__name__])[0]}"
            ) from None
    cls = model_class(name)
    try:
        model = cls(**kwargs)
    except (TypeError, ValueError, RuntimeError) as err:  # an unknown keyword, or a size torch cannot build
        raise ConfigError(
            f"bad options for model '{name}': {(str(err).splitlines() or [type(err).__name__])[0]}"
        ) from None
    model.registry_name = name
    return model
