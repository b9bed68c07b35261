"""The examples a user copies run, at the smoke scale, and give what they promise."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_own_model_goes_from_a_plain_module_to_table1(capsys):
    res = _load("own_model").main(full=False, n_attack=64)
    assert res["clean"] >= 0.8  # one epoch on the shipped digits
    assert res["input_accuracy"] <= 0.2  # PGD-40 at eps 0.3 fools the natural net
    t = res["table"]
    assert t["layers"] == ["pool1", "pool2"] and res["n"] == 64
    assert sum(v for v in t["vulnerability"].values() if v is not None) == pytest.approx(1 - t["accuracy"]["pool2"])
    assert set(res["index_change"]) == {"features.2", "features.5"}  # the net's two max pools, by the user's paths
    assert all(0 < e["fraction"] < 1 for e in res["index_change"].values())
    out = capsys.readouterr().out
    assert "pool1" in out and "Acc_i" in out


def test_own_resnet_taps_inside_its_blocks(capsys):
    res = _load("own_resnet").main(full=False, n_attack=64)
    assert res["clean"] >= 0.8 and res["input_accuracy"] <= 0.2
    assert res["table"]["layers"] == ["layer1.1.conv2", "layer2.1"]
    assert res["f_post_inside_block"].startswith("f_post is not offered at 'layer1.1.conv2'")
    assert "skip connection" in res["f_post_inside_block"]
    out = capsys.readouterr().out
    assert "layer2.1" in out and "Vul_i" in out
