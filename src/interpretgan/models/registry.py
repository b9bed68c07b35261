"""Models registered by name and created by one factory (timm-style)."""

from __future__ import annotations

from collections.abc import Callable

from interpretgan.errors import ConfigError
from interpretgan.models.base import TappedModel

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
        raise ConfigError(f"unknown model '{name}'; registered models are: {', '.join(list_models())}") from None


def create_model(name: str, **kwargs) -> TappedModel:
    """Build a registered classifier; ``kwargs`` are its constructor's keyword arguments."""
    cls = model_class(name)
    try:
        model = cls(**kwargs)
    except (TypeError, ValueError, RuntimeError) as err:  # an unknown keyword, or a size torch cannot build
        raise ConfigError(f"bad options for model '{name}': {(str(err).splitlines() or [type(err).__name__])[0]}") from None
    model.registry_name = name
    return model
