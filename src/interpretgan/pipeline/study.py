"""The max- vs average-pooling study (Section 5.2, Tables 2 and 3).

``interpretgan study pooling --dataset mnist --model smallcnn --preset cpu`` trains the max-pool
and the avg-pool variant with ``trades+atta`` under the same seed and schedule (for each seed),
attacks both on the same test subset with the paper's four attacks and, in a stage of its own,
with AutoAttack's ensemble (APGD-CE, APGD-T, Square; FAB-T not included; :data:`STUDY_AUTOATTACK`),
and writes the table with the paper's values beside (none for AutoAttack: the paper did not run
it) and ``avg - max`` per attack (mean and sd over seeds; a binomial 95 % interval for each single
accuracy). The study folder holds the train runs and ``stages.json``, so re-running the same
command resumes it; a folder made before the AutoAttack stage existed resumes and runs just that stage.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from interpretgan.attacks.specs import parse_attack_spec
from interpretgan.config.presets import resolve_train_config
from interpretgan.diagnose.pooling import POOLING_ATTACKS, merge_arm, pooling_table
from interpretgan.errors import ConfigError
from interpretgan.io import write_json, write_text
from interpretgan.pipeline.attack import attack_run
from interpretgan.pipeline.runs import Run
from interpretgan.pipeline.stages import Stages
from interpretgan.pipeline.train import fit_in
from interpretgan.report.markdown import pooling_markdown

log = logging.getLogger(__name__)


#: Test images attacked per preset (None: the whole test set).
STUDY_EVAL: dict[str, int | None] = {"smoke": 64, "cpu": 1000, "paper": None}

#: AutoAttack's column per preset: (attack spec, test images; None: the whole test set). The
#: ensemble costs ~15x Table 2's four attacks per robust image, so ``cpu`` runs it on a prefix of
#: the same seeded subset; ``smoke`` runs a reduced ensemble that only shows the stage working.
STUDY_AUTOATTACK: dict[str, tuple[str, int | None]] = {
    "smoke": ("autoattack-apgd5-square50", 64), "cpu": ("autoattack", 300), "paper": ("autoattack", None),
}

#: Model size for the reduced presets where the training preset's ``model_kwargs`` are VGG's.
_REDUCED_MODEL_KWARGS: dict[str, dict[str, Any]] = {"wrn34_10": {"depth": 10, "widen": 1}}


def study_train_config(dataset: str, model: str, pool: str, preset: str, seed: int,
                       overrides: dict[str, Any] | None = None):
    """The ``trades+atta`` training config of one arm of the study (same schedule for both pools)."""
    values: dict[str, Any] = {"model": model, "pool": pool, "seed": seed}
    if preset != "paper" and model in _REDUCED_MODEL_KWARGS:
        values["model_kwargs"] = _REDUCED_MODEL_KWARGS[model]
    return resolve_train_config(dataset, "trades+atta", preset, {**values, **(overrides or {})})


def evaluate_arm(run: Run, attacks: Sequence[str], *, n_eval: int | None, device: Any, data_root: Any, verify: bool,
                 progress: bool, seed: int = 0, **arithmetic: Any) -> dict[str, Any]:
    """``attacks`` (specs, e.g. :data:`POOLING_ATTACKS` of the dataset) on one trained arm, in ``arithmetic``
    (``attack_run``'s precision, channels_last, compile): ``{"clean", "n", "attacks": {name: accuracy},
    "n_attacks": {name: n}, "folder"}``."""
    res = attack_run(run, list(attacks), n=n_eval, device=device, data_root=data_root, verify=verify,
                     progress=progress, seed=seed, **arithmetic)
    return {"clean": res["clean_accuracy"], "n": res["n"], "folder": res["folder"],
            "attacks": {k: v["accuracy"] for k, v in res["attacks"].items()},
            "n_attacks": {k: res["n"] for k in res["attacks"]}}


def pooling_study(dataset: str, model: str, preset: str, *, seeds: Sequence[int] = (0,), out: str | Path,
                  n_eval: int | None = -1, device: Any = "cpu", data_root: Any = None, verify: bool = True,
                  progress: bool = True, overrides: dict[str, Any] | None = None, autoattack_n: int | None = -1,
                  autoattack: str | None = None, arithmetic: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run (or resume) the pooling study in the folder ``out``; returns and writes ``pooling.json`` / ``pooling.md``.

    ``n_eval``: test images attacked per arm (-1: the preset's :data:`STUDY_EVAL`; None: all).
    ``autoattack_n``: test images of AutoAttack's column, the first of the same seeded subset (-1: the
    preset's :data:`STUDY_AUTOATTACK`; 0: no column; None: all); ``autoattack``: its spec (None: the preset's).
    ``arithmetic``: the attacks' precision, channels_last and compile (:func:`evaluate_arm`).
    """
    key = "mnist" if dataset == "mnist-sample" else dataset
    if key not in POOLING_ATTACKS:
        raise ConfigError(f"the pooling study covers {', '.join(POOLING_ATTACKS)}; got dataset '{dataset}'")
    if not seeds:
        raise ConfigError("--seeds is empty; expected at least one seed")
    if preset not in STUDY_EVAL:
        raise ConfigError(f"unknown preset '{preset}' for the pooling study; expected one of {', '.join(STUDY_EVAL)}")
    n_eval = STUDY_EVAL[preset] if n_eval == -1 else n_eval
    aa_spec = STUDY_AUTOATTACK[preset][0] if autoattack is None else autoattack
    aa_n = STUDY_AUTOATTACK[preset][1] if autoattack_n == -1 else autoattack_n
    if aa_n is not None and (isinstance(aa_n, bool) or not isinstance(aa_n, int) or aa_n < 0):
        raise ConfigError(f"the AutoAttack subset must be an integer >= 0 (0: no AutoAttack), got {aa_n!r}")
    if aa_n != 0:
        parse_attack_spec(aa_spec, eps=0.0, alpha=0.0, steps=1)  # a bad spec ends here, before any training
    if n_eval is not None and (aa_n is None or aa_n > n_eval):
        aa_n = n_eval  # the first aa_n of the same seeded subset: never images the other attacks did not see
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    stages = Stages(folder)
    arms: dict[str, dict[int, dict[str, Any]]] = {"max": {}, "avg": {}}
    for seed in seeds:
        for pool in ("max", "avg"):
            cfg = study_train_config(dataset, model, pool, preset, seed, overrides)
            desc = f"{dataset}-{model}-{pool}-trades+atta-{preset}-seed{seed}"
            path = stages.run(f"train-{pool}-seed{seed}", lambda c=cfg, d=desc: str(fit_in(
                folder, d, c, device=device, data_root=data_root, verify=verify, progress=progress).path),
                settings=cfg.to_dict())
            io = dict(device=device, data_root=data_root, verify=verify, progress=progress, **(arithmetic or {}))
            arm = stages.run(
                f"attack-{pool}-seed{seed}",
                evaluate_arm,
                Run.open(path, kind="train"),
                POOLING_ATTACKS[key],
                n_eval=n_eval,
                **io,
                settings={"attacks": list(POOLING_ATTACKS[key]), "n_eval": n_eval},
            )
            if aa_n != 0:  # a stage of its own: a folder made before it resumes and runs just this
                arm = merge_arm(
                    arm,
                    stages.run(
                        f"autoattack-{pool}-seed{seed}",
                        evaluate_arm,
                        Run.open(path, kind="train"),
                        [aa_spec],
                        n_eval=aa_n,
                        **io,
                        settings={"attack": aa_spec, "n": aa_n},
                    ),
                )
            arms[pool][seed] = {**arm, "run": path}
    table = pooling_table(arms, key, model)
    result = {"dataset": dataset, "model": model, "preset": preset, "seeds": list(seeds), "table": table,
              "arms": {p: {str(s): v for s, v in a.items()} for p, a in arms.items()}, "seconds": stages.seconds(),
              "folder": str(folder)}
    reduced = _REDUCED_MODEL_KWARGS.get(model) if preset != "paper" else None
    shape = (
        f", reduced to {', '.join(f'{k} {v}' for k, v in reduced.items())}; the paper's row is the full model"
        if reduced
        else ""
    )
    aa = [f"{a} on n={m}" for a, m in table["n_attacks"].items() if m != table["n"]]
    title = (f"{'Table 2' if key == 'mnist' else 'Table 3'}: {model}{shape}, max vs avg pooling "
             f"({preset} preset, n={table['n']} per seed{'; ' + ', '.join(aa) if aa else ''})")
    write_json(folder / "pooling.json", result)
    write_text(folder / "pooling.md", pooling_markdown(table, title))
    return result
