"""PGD-100 on the first 1,000 MNIST test images under evaluation variants, for saved models.

    INTERPRETGAN_DATA=../shared/data python experiments/2026-12-01-cpu-mnist-max-screen/eval_variants.py \
        experiments/2026-11-30-h200-mnist-adv/max-trades+atta-seed0/ckpt \
        experiments/2026-11-30-h200-mnist-adv/avg-trades+atta-seed0/ckpt

Step 0.01 with the random start clipped to [0, 1] (the library's PGD), step 0.01 with TRADES' /
ATTA's unclipped start, steps 0.02 and 0.03; eps 0.3, torch.manual_seed(0) before each. Accuracies
in percent, one JSON line a model.
"""
import json, sys, torch, torch.nn.functional as F
from interpretgan.data import load_dataset
from interpretgan.runs import load_model
torch.manual_seed(0)
ds = load_dataset("mnist", "test", image_size=32)
x = torch.as_tensor(ds.x[:1000]).float(); y = torch.as_tensor(ds.y[:1000]).long()
if x.max() > 1.5: x = x / 255.0
def pgd(model, x, y, steps, alpha, eps=0.3, clip_start=True, momentum=False):
    xa = x + torch.empty_like(x).uniform_(-eps, eps)
    if clip_start: xa = xa.clamp(0, 1)
    g = 0
    for _ in range(steps):
        xa = xa.detach().requires_grad_(True)
        loss = F.cross_entropy(model(xa), y)
        (gr,) = torch.autograd.grad(loss, xa)
        g = g + gr if momentum else gr
        xa = torch.min(torch.max(xa.detach() + alpha * g.sign(), x - eps), x + eps).clamp(0, 1)
    with torch.no_grad():
        return (model(xa).argmax(1) == y).float().mean().item() * 100
for name in sys.argv[1:]:
    m = load_model(name).eval()
    out = {"model": name}
    for label, kw in [("pgd100_a0.01", dict(steps=100, alpha=0.01)),
                      ("pgd100_a0.01_unclipped_start", dict(steps=100, alpha=0.01, clip_start=False)),
                      ("pgd100_a0.02", dict(steps=100, alpha=0.02)),
                      ("pgd100_a0.03", dict(steps=100, alpha=0.03))]:
        torch.manual_seed(0)
        out[label] = pgd(m, x, y, **kw)
        print(label, out[label], flush=True)
    print(json.dumps(out), flush=True)
