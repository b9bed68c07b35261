"""Diagnosis: Eq. 5 on known values, bootstrap intervals, max-pool index change, the diagnose and
pooling-study commands on small runs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from interpretgan.diagnose import (
    PAPER_TABLE1,
    binomial_interval,
    combine_runs,
    defined_drops,
    marked_layers,
    max_pools,
    maxpool_index_change,
    paper_model_kind,
    pooling_table,
    vulnerability,
    vulnerability_table,
    with_paper,
)
from interpretgan.diagnose.pooling import difference_interval, merge_arm
from interpretgan.errors import ConfigError, RunError
from interpretgan.io import read_json
from interpretgan.models import create_model
from interpretgan.pipeline.diagnose import diagnose_run
from interpretgan.pipeline.study import pooling_study
from interpretgan.report.markdown import pooling_markdown
from interpretgan.report.tables import pct

LAYERS = ["conv1", "conv2", "conv3", "conv4", "fc1", "fc2", "fc3"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("row", ["natural", "adversarial"])
def test_eq5_reproduces_the_papers_table1_vulnerabilities(row):
    acc = [PAPER_TABLE1[row]["accuracy"][n] for n in LAYERS]
    vul = vulnerability(acc)
    assert vul.tolist() == pytest.approx([PAPER_TABLE1[row]["vulnerability"][n] for n in LAYERS], abs=1e-9)
    assert float(vul.sum()) == pytest.approx(1 - acc[-1])  # the drops telescope to 1 - Acc_L


def test_marked_layers_on_the_papers_rows():
    for row, expected in (("natural", ["conv1", "conv2"]), ("adversarial", ["conv1", "fc1"])):
        acc = [PAPER_TABLE1[row]["accuracy"][n] for n in LAYERS]
        assert marked_layers(LAYERS, acc, vulnerability(acc).tolist()) == expected


def test_vulnerability_table_values_and_bootstrap_intervals():
    layers = ["a", "b", "c"]
    # 100 examples: 80 right at a, 60 at b, the same 60 at c.
    correct = torch.zeros(100, 3, dtype=torch.bool)
    correct[:80, 0] = True
    correct[:60, 1:] = True
    t = vulnerability_table(correct, layers, n_boot=400, seed=1)
    assert t["accuracy"] == pytest.approx({"a": 0.8, "b": 0.6, "c": 0.6})
    assert t["vulnerability"] == pytest.approx({"a": 0.2, "b": 0.2, "c": 0.0})
    for n in layers:
        lo, hi = t["accuracy_ci"][n]
        assert lo <= t["accuracy"][n] <= hi and hi - lo > 0.05
    # b and c are right on the same examples in every resample: Vul_c is exactly 0 throughout.
    assert t["vulnerability_ci"]["c"] == [0.0, 0.0]
    assert t["n"] == 100 and t["vulnerable"] == ["a", "b"]
    # Four times the examples: intervals about half as wide.
    big = vulnerability_table(correct.repeat(4, 1), layers, n_boot=400, seed=1)
    width = lambda tab: tab["accuracy_ci"]["b"][1] - tab["accuracy_ci"]["b"][0]  # noqa: E731
    assert width(big) < 0.7 * width(t)
    assert vulnerability_table(correct, layers, n_boot=400, seed=1) == t  # seeded


def test_vulnerability_of_some_layers_only_compares_neighbours():
    # conv1, conv2 and fc1 explained: Vul of fc1 would be the drop over conv3..fc1, not Eq. 5's
    correct = torch.tensor([[1, 1, 1], [1, 0, 0], [0, 0, 0], [1, 1, 0]], dtype=torch.bool)
    t = vulnerability_table(correct, ["conv1", "conv2", "fc1"], model_layers=LAYERS, n_boot=50)
    assert t["accuracy"] == {"conv1": 0.75, "conv2": 0.5, "fc1": 0.25}
    assert t["vulnerability"] == {"conv1": 0.25, "conv2": 0.25, "fc1": None}
    assert t["vulnerability_ci"]["fc1"] is None and t["vulnerability_ci"]["conv2"] is not None
    assert t["n_model_layers"] == 5  # the drop to fc1 spans conv1..fc1
    assert t["vulnerable"] == ["conv1", "conv2"]  # 0.25 > (1 - 0.25) / 5
    assert defined_drops(["conv2", "conv3"], LAYERS) == [False, True]
    assert (
        vulnerability_table(correct, ["conv1", "conv2", "conv3"], model_layers=LAYERS, n_boot=0)["vulnerability"][
            "conv3"
        ]
        == 0.25
    )
    with pytest.raises(ConfigError, match="unknown layer"):
        defined_drops(["conv1", "conv9"], LAYERS)
    with pytest.raises(ConfigError, match="not in the classifier's order"):
        defined_drops(["conv2", "conv1"], LAYERS)
    # several runs and the paper's row keep the missing Vul missing
    c = combine_runs([t, t])
    assert c["vulnerability_mean"]["fc1"] is None and c["vulnerability_sd"]["fc1"] is None
    assert c["vulnerability_mean"]["conv2"] == pytest.approx(0.25) and c["vulnerable"] == ["conv1", "conv2"]
    p = with_paper(t, "natural")
    assert p["difference"]["vulnerability"]["fc1"] is None
    assert p["difference"]["accuracy"]["fc1"] == pytest.approx(0.25 - 0.043)


def test_table1_is_the_max_pool_smallcnn():
    assert paper_model_kind("mnist", "smallcnn", "natural", "max") == "natural"
    assert paper_model_kind("mnist", "smallcnn", "trades+atta", "max") == "adversarial"
    assert paper_model_kind("mnist", "smallcnn", "trades+atta", "avg") is None  # Fig. 6's model has max pooling
    assert paper_model_kind("cifar10", "vgg16", "natural", "max") is None


def test_vulnerability_table_rejects_bad_shapes():
    with pytest.raises(ConfigError, match="must be \\(N, 3\\)"):
        vulnerability_table(torch.ones(5, 2, dtype=torch.bool), ["a", "b", "c"])
    with pytest.raises(ConfigError, match="empty"):
        vulnerability_table(torch.ones(0, 1, dtype=torch.bool), ["a"])


def test_combine_runs_and_paper_difference():
    t1 = {
        "layers": ["conv1", "conv2"],
        "accuracy": {"conv1": 0.5, "conv2": 0.3},
        "vulnerability": {"conv1": 0.5, "conv2": 0.2},
    }
    t2 = {
        "layers": ["conv1", "conv2"],
        "accuracy": {"conv1": 0.7, "conv2": 0.3},
        "vulnerability": {"conv1": 0.3, "conv2": 0.4},
    }
    c = combine_runs([t1, t2])
    assert c["accuracy_mean"] == pytest.approx({"conv1": 0.6, "conv2": 0.3})
    assert c["accuracy_sd"]["conv1"] == pytest.approx(2 ** 0.5 * 0.1) and c["accuracy_sd"]["conv2"] == 0
    p = with_paper(c, "natural")
    assert p["difference"]["accuracy"]["conv1"] == pytest.approx(0.6 - 0.526)
    assert p["paper"]["vulnerability"]["conv2"] == 0.263
    with pytest.raises(ConfigError, match="different layers"):
        combine_runs([t1, {**t2, "layers": ["conv1"]}])


class _OnePool(nn.Module):
    def __init__(self):
        super().__init__()
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        return self.pool(x).flatten(1)


def test_maxpool_index_change_counts_moved_maxima_exactly():
    x = torch.zeros(2, 1, 4, 4)
    x[:, :, 0, 0] = 1.0  # window (0, 0): maximum at its top-left
    x[:, :, 2, 3] = 1.0  # window (1, 1): maximum at (2, 3)
    x_adv = x.clone()
    x_adv[0, 0, 1, 1] = 2.0  # first image: window (0, 0)'s maximum moves
    x_adv[1, 0, 3, 2] = 2.0  # second image: window (1, 1)'s maximum moves
    x_adv[1, 0, 0, 0] = 0.5  # lowered but still the maximum: no move
    x_adv[0, 0, 0, 3] = 1e-6  # a leak into an all-zero window (a tie at 0) moves its argmax too
    model = _OnePool()
    out = maxpool_index_change(model, x, x_adv, batch_size=1)
    # ... but only the windows with a feature (natural maximum > 0) count in fraction_active
    assert out == {
        "pool": {"fraction": 3 / 8, "changed": 3, "windows": 8, "fraction_active": 2 / 4, "active_windows": 4}
    }
    assert maxpool_index_change(model, x, x)["pool"]["fraction"] == 0.0
    assert maxpool_index_change(model, torch.zeros_like(x), x_adv)["pool"]["fraction_active"] is None  # no feature
    assert not model.pool._forward_pre_hooks  # hooks removed


def test_maxpool_index_change_covers_a_global_max_pool():
    # WideResNet's max arm pools globally (nn.AdaptiveMaxPool2d(1)): one window a channel
    model = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())
    x = torch.zeros(1, 2, 3, 3)
    x[0, 0, 0, 0], x[0, 1, 2, 2] = 1.0, 1.0
    x_adv = x.clone()
    x_adv[0, 0, 1, 1] = 1.5  # channel 0's maximum moves; channel 1's stays
    assert list(max_pools(model)) == ["0"]
    assert maxpool_index_change(model, x, x_adv)["0"] == {"fraction": 0.5, "changed": 1, "windows": 2,
                                                         "fraction_active": 0.5, "active_windows": 2}


def test_maxpool_index_change_names_smallcnn_pools_and_skips_avg_pooling():
    torch.manual_seed(0)
    f = create_model("smallcnn").eval()
    assert list(max_pools(f)) == ["conv2", "conv4"]
    x = torch.rand(8, 1, 32, 32)
    x_adv = (x + 0.3 * torch.sign(torch.randn_like(x))).clamp(0, 1)
    out = maxpool_index_change(f, x, x_adv)
    assert out["conv2"]["windows"] == 8 * 32 * 14 * 14 and out["conv4"]["windows"] == 8 * 64 * 5 * 5
    assert all(0 < e["fraction"] < 1 for e in out.values())
    # windows with a feature: fewer than all; a moved maximum among them is a subset of all moved ones
    assert all(0 < e["active_windows"] < e["windows"] for e in out.values())
    assert all(e["fraction_active"] * e["active_windows"] <= e["changed"] + 1e-9 for e in out.values())
    assert maxpool_index_change(create_model("smallcnn", pool="avg"), x, x_adv) == {}
    with pytest.raises(ConfigError, match="differ in shape"):
        maxpool_index_change(f, x, x_adv[:4])


def test_diagnose_run_writes_table1_files(sample_explain_run, tmp_path):
    res = diagnose_run([sample_explain_run], attack="fgsm", n_compute=48, n_boot=100, out_dir=tmp_path / "diag")
    table = res["table"]
    assert table["layers"] == LAYERS and res["n"] == 48
    acc = [table["accuracy"][n] for n in LAYERS]
    assert all(0 <= a <= 1 for a in acc)
    assert sum(table["vulnerability"].values()) == pytest.approx(1 - acc[-1])
    assert res["paper_row"] == "natural" and table["paper"]["accuracy"]["conv1"] == 0.526
    assert set(res["index_change"]) == {"conv2", "conv4"} and res["index_change"]["conv2"]["paper"] == 0.409
    assert sum(map(sum, res["transitions"]["transition"])) == 48
    stored = read_json(tmp_path / "diag" / "diagnose.json")
    assert stored["table"]["accuracy"] == pytest.approx(table["accuracy"])
    md = (tmp_path / "diag" / "vulnerability.md").read_text()
    assert "Acc_i (paper)" in md and "Max-pool index change" in md
    assert (
        f"| Acc_i | {pct(table['accuracy']['conv1'])} | {pct(table['accuracy']['conv2'])} |" in md
    )  # our row, in order
    for key in ("figure", "transitions"):
        assert (tmp_path / "diag" / res["files"][key].split("/")[-1]).stat().st_size > 1000
    # Two runs of the same classifier: mean +/- sd (identical runs: sd 0).
    two = diagnose_run([sample_explain_run, sample_explain_run], attack="fgsm", n_compute=48, n_boot=0,
                       out_dir=tmp_path / "two")
    assert two["table"]["accuracy_mean"] == pytest.approx(table["accuracy"])
    assert all(v == 0 for v in two["table"]["accuracy_sd"].values())


def test_diagnose_in_memory_equals_the_run_folder_path(sample_explain_run, tmp_path):
    """diagnose(f, explainers, x_adv, y) on the same D* gives the run folder's Table 1, intervals included."""
    from interpretgan.diagnose import diagnose
    from interpretgan.pipeline.explain import adversarial_inputs, load_explainers

    stored = diagnose_run([sample_explain_run], attack="fgsm", n_compute=48, n_boot=100, out_dir=tmp_path / "d")
    f, explainers = load_explainers(sample_explain_run, finished=True)
    adv = adversarial_inputs(sample_explain_run, f, "fgsm", n_compute=48)
    res = diagnose(f, explainers, adv.x_adv, adv.y, x=adv.x, n_boot=100)
    assert res["n"] == stored["n"] == 48
    for key in ("accuracy", "vulnerability", "accuracy_ci", "vulnerability_ci", "vulnerable", "adversarial_label"):
        assert res["table"][key] == stored["runs"][0]["table"][key], key
    for pool, entry in res["index_change"].items():  # the run folder adds the paper's value beside ours
        assert entry == {k: v for k, v in stored["index_change"][pool].items() if k in entry}, pool
    with pytest.raises(ConfigError, match="one label per adversarial image"):
        diagnose(f, explainers, adv.x_adv, adv.y[:3])


def test_diagnose_under_autoattack(sample_explain_run, tmp_path):
    """D* from AutoAttack's ensemble through the same spec parsing: Table 1 under the strongest attack."""
    res = diagnose_run([sample_explain_run], attack="autoattack", n_compute=16, n_boot=0, out_dir=tmp_path / "aa")
    fgsm = diagnose_run([sample_explain_run], attack="fgsm", n_compute=16, n_boot=0, out_dir=tmp_path / "fgsm")
    one, one_fgsm = res["runs"][0], fgsm["runs"][0]
    assert res["attack"] == "autoattack-nofab" and one["source"] == "computed" and res["n"] == 16
    # the classifier's accuracy on D*: the ensemble leaves no more images robust than FGSM does
    assert one["input_accuracy"] <= min(one_fgsm["input_accuracy"], one["clean_accuracy"])
    assert set(res["table"]["accuracy"]) == set(LAYERS)
    assert "autoattack-nofab" in (tmp_path / "aa" / "vulnerability.md").read_text()


def test_diagnose_rejects_a_train_run(tmp_path):
    from interpretgan.pipeline.runs import Run

    run = Run.create(tmp_path, "cls", "train", {"dataset": "mnist"})
    with pytest.raises(RunError, match="expected an 'explain' run"):
        diagnose_run([run.path])


def test_binomial_interval_and_pooling_table():
    lo, hi = binomial_interval(0.5, 100)
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)
    arm = lambda clean, a: {"clean": clean, "n": 100, "attacks": dict(zip(["pgd40", "pgd100", "mpgd40", "fgsm"], a))}  # noqa: E731
    arms = {"max": {0: arm(0.98, [0.80, 0.70, 0.81, 0.90]), 1: arm(0.97, [0.82, 0.72, 0.83, 0.92])},
            "avg": {0: arm(0.97, [0.84, 0.76, 0.84, 0.91]), 1: arm(0.98, [0.84, 0.74, 0.85, 0.93])}}
    t = pooling_table(arms, "mnist", "smallcnn")
    assert t["avg_minus_max"]["pgd40"]["mean"] == pytest.approx(0.03)
    assert t["avg_minus_max"]["pgd40"]["sd"] == pytest.approx(2 ** 0.5 * 0.01)
    assert t["avg_minus_max"]["pgd100"]["paper"] == pytest.approx(0.8748 - 0.8198)
    assert t["rows"]["max"]["pgd40"]["difference"] == pytest.approx(0.81 - 0.8933)
    assert all(t["avg_at_least_max"].values())
    # the two seeds attack the same 100 images: the interval is the 100 images', not 200 draws'
    assert t["rows"]["max"]["pgd40"]["ci"] == pytest.approx(binomial_interval(0.81, 100))
    assert t["attacks"] == ["pgd40", "pgd100", "mpgd40", "fgsm"]
    # AutoAttack's own stage on 50 of the images, merged in: a column with no paper value, its interval from 50
    for pool in arms.values():
        for a in pool.values():
            a.update(
                merge_arm(
                    a,
                    {
                        "clean": 0.9,
                        "n": 50,
                        "folder": "f",
                        "attacks": {"autoattack-nofab": a["attacks"]["pgd100"] - 0.05},
                    },
                )
            )
    t = pooling_table(arms, "mnist", "smallcnn")
    assert t["attacks"][-1] == "autoattack-nofab" and t["rows"]["max"]["autoattack-nofab"]["paper"] is None
    assert t["n"] == 100 and t["n_attacks"] == {
        "pgd40": 100,
        "pgd100": 100,
        "mpgd40": 100,
        "fgsm": 100,
        "autoattack-nofab": 50,
    }
    assert t["rows"]["max"]["autoattack-nofab"]["ci"] == pytest.approx(binomial_interval(0.66, 50))
    assert t["rows"]["max"]["clean"]["mean"] == pytest.approx(0.975)  # the arm's clean accuracy, not the subset's
    d = t["avg_minus_max"]["autoattack-nofab"]
    assert d["mean"] == pytest.approx(0.04) and d["ci"] == pytest.approx(difference_interval(0.70, 50, 0.66, 50))
    assert d["ci"][0] < 0 < d["ci"][1]  # 4 points on 50 images decide nothing
    assert "autoattack-nofab" in pooling_markdown(t, "Table 2")


def test_difference_interval_is_newcombes():
    # Newcombe (1998), Table II, example (a): 56/70 - 48/80 = 0.2, method 10 gives 0.0524 to 0.3339
    lo, hi = difference_interval(56 / 70, 70, 48 / 80, 80)
    assert lo == pytest.approx(0.0524, abs=1e-4) and hi == pytest.approx(0.3339, abs=1e-4)
    lo, hi = difference_interval(0.5, 1000, 0.5, 1000)  # symmetric around 0, narrower with n
    assert lo == pytest.approx(-hi) and hi < difference_interval(0.5, 100, 0.5, 100)[1]
    assert difference_interval(1.0, 10, 0.0, 10)[1] == 1.0 and difference_interval(0.0, 10, 1.0, 10)[0] == -1.0


def test_pooling_study_smoke_runs_and_resumes(tmp_path):
    kw = dict(seeds=[0], out=tmp_path / "study", n_eval=32, progress=False, overrides={"epochs": 1})
    # A folder made before the AutoAttack stage existed: the paper's four attacks only.
    old = pooling_study("mnist-sample", "smallcnn", "smoke", **kw, autoattack_n=0)
    t = old["table"]
    assert t["attacks"] == ["pgd40", "pgd100", "mpgd40", "fgsm"] and t["n"] == 32
    for pool in ("max", "avg"):
        assert all(0 <= t["rows"][pool][a]["mean"] <= t["rows"][pool]["clean"]["mean"] for a in t["attacks"])
    md = (tmp_path / "study" / "pooling.md").read_text()
    assert "avg − max" in md and "89.33 %" in md  # the paper's PGD-40 max-pool value beside ours
    stamps = sorted(p.stat().st_mtime_ns for p in (tmp_path / "study").glob("*/ckpt/model.safetensors"))
    before = read_json(tmp_path / "study" / "stages.json")
    # The same command now (smoke: a reduced ensemble on the same 32 images) resumes it and runs only AutoAttack.
    res = pooling_study("mnist-sample", "smallcnn", "smoke", **kw)
    t = res["table"]
    aa = "autoattack-nofab-apgd5-square50"
    assert t["attacks"] == ["pgd40", "pgd100", "mpgd40", "fgsm", aa] and t["n_attacks"][aa] == 32
    stages = read_json(tmp_path / "study" / "stages.json")
    assert set(stages) - set(before) == {"autoattack-max-seed0", "autoattack-avg-seed0"}
    assert all(stages[k] == before[k] for k in before)  # nothing trained or attacked again
    assert sorted(p.stat().st_mtime_ns for p in (tmp_path / "study").glob("*/ckpt/model.safetensors")) == stamps
    for pool in ("max", "avg"):  # on the same images: an attack never leaves more correct than the clean accuracy
        assert 0 <= t["rows"][pool][aa]["mean"] <= t["rows"][pool]["clean"]["mean"]
        assert {k: v for k, v in t["rows"][pool].items() if k != aa} == old["table"]["rows"][pool]
    assert pooling_study("mnist-sample", "smallcnn", "smoke", **kw)["table"] == t
    with pytest.raises(RunError, match="autoattack-max-seed0"):  # another ensemble in the same folder is refused
        pooling_study("mnist-sample", "smallcnn", "smoke", **kw, autoattack="autoattack-apgd6-square50")
    with pytest.raises(ConfigError, match="is not an attack"):
        pooling_study("mnist-sample", "smallcnn", "smoke", **kw, autoattack="autoattak")
    with pytest.raises(ConfigError, match="covers mnist, cifar10"):
        pooling_study("celeba", "vgg16", "smoke", out=tmp_path / "x")
    with pytest.raises(ConfigError, match="unknown preset 'fast'"):
        pooling_study("mnist", "smallcnn", "fast", out=tmp_path / "x")
