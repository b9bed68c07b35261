"""Control: CelebA block1 explainer with PyTorch's default C init, on the same classifier as the 2026-11-30 reproduction."""
import sys
import interpretgan.explain.trainer as trainer
from interpretgan.cli import main

_orig = trainer.compression_configs
def torch_init_configs(*a, **k):
    return {layer: {**cfg, "init": "torch"} for layer, cfg in _orig(*a, **k).items()}
trainer.compression_configs = torch_init_configs
sys.exit(main(["explain", "train", "/work/meas/reproduce-celeba-cpu/00000-vgg16-max-natural", "--layers", "block1",
               "--preset", "cpu", "--out", "/work/meas/celeba-block1-torchinit", "--no-progress"]))
