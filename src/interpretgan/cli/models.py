"""``interpretgan models``: the registry, or one model's layers."""

from __future__ import annotations

import argparse
from typing import Any


# --- commands -----------------------------------------------------------------------------------
def cmd_models(args: argparse.Namespace) -> int:
    from interpretgan.models import create_model, list_models, model_class

    if args.name is None:
        for name in list_models():
            doc = (model_class(name).__doc__ or "").strip().splitlines()[0]
            print(f"{name:10s} {doc}")
        return 0
    kwargs: dict[str, Any] = {"image_size": args.image_size}
    if args.in_channels is not None:
        kwargs["in_channels"] = args.in_channels
    if args.pool:
        kwargs["pool"] = args.pool
    model = create_model(args.name, **kwargs)
    if args.layers:
        print(f"{args.name} taps for a {model.config['in_channels']}x{args.image_size}x{args.image_size} input:")
        for layer, shape in model.tap_shapes(args.image_size).items():
            print(f"  {layer:8s} {tuple(shape)}")
    n = sum(p.numel() for p in model.parameters())
    print(f"{args.name}: {n:,} parameters, pooling {model.config['pool']}, layers {', '.join(model.layer_names)}")
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("models", help="list the model registry, or one model's layers")
    p.add_argument("name", nargs="?")
    p.add_argument("--layers", action="store_true", help="print each tap's name and output shape")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--in-channels", type=int)
    p.add_argument("--pool", choices=("max", "avg"))
    p.set_defaults(func=cmd_models)

