"""One PGD trajectory (eps 0.3, step 0.01, uniform random start, clipped) of 500 steps on the first
N test images; the accuracy of the iterate after k steps is PGD-k's figure (same start, same steps),
plus the fraction never fooled along the way. Independent of interpretgan.attacks."""
import json, sys, time
import torch, torch.nn.functional as F
from interpretgan.data import load_dataset
from interpretgan.runs import load_model
run, n = sys.argv[1], int(sys.argv[2])
model = load_model(run).eval()
test = load_dataset("mnist", "test", image_size=32)
x, y = test.float_batch(slice(0, n))
g = torch.Generator().manual_seed(0)
eps, step = 0.3, 0.01
xa = (x + eps * (2 * torch.rand(x.shape, generator=g) - 1)).clamp(0, 1)
never = torch.ones(n, dtype=torch.bool)
out, t = {}, time.time()
for k in range(1, 501):
    xa.requires_grad_(True)
    loss = F.cross_entropy(model(xa), y, reduction="sum")
    (gr,) = torch.autograd.grad(loss, xa)
    xa = torch.min(torch.max(xa.detach() + step * gr.sign(), x - eps), x + eps).clamp(0, 1)
    with torch.no_grad():
        ok = model(xa).argmax(1) == y
    never &= ok
    if k in (20, 40, 100, 200, 300, 500):
        out[f"pgd{k}"] = round(ok.float().mean().item() * 100, 2)
        out[f"never_fooled_{k}"] = round(never.float().mean().item() * 100, 2)
        print(k, out[f"pgd{k}"], out[f"never_fooled_{k}"], f"{time.time()-t:.0f}s", flush=True)
print(json.dumps({"run": run, "n": n, **out}))
