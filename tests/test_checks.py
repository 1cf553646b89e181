"""The study's checks against the seeds' spread: bfloat16, and the dropout draw."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pandas as pd
import pytest
from test_study import factorial, write_run  # noqa: F401 (a fixture)

from fer_lib import checks, runs, stats, study

ROOT = Path(__file__).resolve().parents[1]


def test_precision_check_compares_the_shared_epochs_and_decides(factorial, tmp_path):  # noqa: F811
    fp32 = write_run(tmp_path / "paper", "both", 0, val=[0.60, 0.65, 0.64, 0.66, 0.7], train_acc=[0.5] * 5,
                     test_correct=0.6, epochs=5)
    check = checks.precision_check(factorial, runs.load_run(fp32))
    assert list(check.index) == [0]
    row = check.loc[0]
    assert row["epochs"] == 4
    # bf16 run (seed 0): 0.607, 0.657, 0.647, 0.637 against 0.60, 0.65, 0.64, 0.66
    assert row["max_abs_diff"] == pytest.approx(2.3) and row["best_diff"] == pytest.approx(65.7 - 66.0)
    # the cell's best: 65.7, 66.0, 66.3 (sd 0.3): two seeds part by up to t(2) * 0.3 * sqrt(2), 1.8 points
    assert row["seeds"] == 3 and row["limit"] == pytest.approx(stats.t_quantile(0.975, 2) * 0.3 * math.sqrt(2))
    assert row["decision"] == checks.SAME_AS_A_SEED
    assert checks.precision_conclusion(check).startswith("At seed 0 the difference lies within that limit")
    far = write_run(tmp_path / "far", "both", 0, val=[0.60, 0.70, 0.75, 0.7], train_acc=[0.5] * 4, test_correct=0.6)
    assert checks.precision_check(factorial, runs.load_run(far)).loc[0, "decision"] == checks.BEYOND_A_SEED
    empty = checks.precision_check({}, runs.load_run(far))
    assert empty.loc[0, "decision"] == study.PENDING and "not decided yet" in checks.precision_conclusion(empty)


def _twin(root: Path, seed: int, val: list[float], **changes) -> dict[int, runs.Run]:
    """A float32 twin of Model B's run of ``seed`` where the bfloat16 check looks for it."""
    write_run(root, "both", seed, val=val, train_acc=[0.5] * len(val), test_correct=0.6,
              out=checks.FP32_DIR / f"seed{seed}", **{"precision": "fp32", **changes})
    return checks.load_fp32_twins(root)


def test_precision_check_decides_every_seed_with_a_twin_by_the_same_rule(factorial, tmp_path):  # noqa: F811
    paper = runs.load_run(write_run(tmp_path / "paper", "both", 0, val=[0.60, 0.65, 0.64, 0.66, 0.7],
                                    train_acc=[0.5] * 5, test_correct=0.6, epochs=5))
    # seed 1's bf16 run peaks at 66.0; a twin at 65.5 is within the 1.8-point limit, one at 62.0 beyond it
    near = checks.precision_check(factorial, paper, _twin(tmp_path / "near", 1, [0.6, 0.655, 0.65, 0.64]))
    assert list(near.index) == [0, 1] and near.loc[1, "best_diff"] == pytest.approx(0.5)
    assert set(near["decision"]) == {checks.SAME_AS_A_SEED}
    assert checks.precision_conclusion(near).startswith("At seeds 0 and 1 the difference lies within that limit")
    far = checks.precision_check(factorial, paper, _twin(tmp_path / "far", 1, [0.6, 0.62, 0.61, 0.6]))
    assert far.loc[1, "decision"] == checks.BEYOND_A_SEED
    assert checks.precision_conclusion(far).startswith("At seed 1 the difference lies beyond that limit")
    # a twin still training is compared over the epochs it has, and decides nothing yet
    running = checks.precision_check(factorial, paper, _twin(tmp_path / "running", 1, [0.6, 0.655]))
    assert running.loc[1, "epochs"] == 2 and running.loc[1, "decision"] == study.PENDING
    assert checks.precision_conclusion(running).endswith("Seed 1 is not decided yet.")


def test_a_twin_must_be_the_cells_run_in_float32(factorial, tmp_path):  # noqa: F811
    paper = runs.load_run(write_run(tmp_path / "paper", "both", 0, val=[0.6] * 5, train_acc=[0.5] * 5,
                                    test_correct=0.6, epochs=5))
    with pytest.raises(ValueError, match="seed1: trained with"):
        checks.precision_check(factorial, paper, _twin(tmp_path / "bf16", 1, [0.6] * 4, precision="bf16"))
    with pytest.raises(ValueError, match="not the check's"):
        checks.precision_check(factorial, paper, _twin(tmp_path / "lr", 1, [0.6] * 4, learning_rate=0.01))


def _drawn(root: Path, shift: float, seeds=(0, 1, 2), spread: float = 0.3) -> dict:
    """Byte-draw runs of Model B at the factorial's Model B levels (66 +- 0.3 points), moved by ``shift`` points."""
    for seed, noise in zip(seeds, (-spread, 0.0, spread)):
        top = 0.66 + (noise + shift) / 100
        write_run(root, "both", seed, val=[top - 0.05, top, top - 0.01, top - 0.02], train_acc=[0.6, 0.8, 0.9, 0.95],
                  test_correct=top, out=checks.DRAW_DIR / f"seed{seed}", dropout_draw="bytes")
    return checks.load_draw_runs(root)


def test_draw_check_decides_against_the_seeds_limit(factorial, tmp_path):  # noqa: F811
    """Keras' cell: best 65.7, 66.0, 66.3, so two seeds part by up to t(2) * 0.3 * sqrt(2) = 1.8 points."""
    same = checks.draw_check(factorial, _drawn(tmp_path / "same", 0.2)).loc["best validation accuracy"]
    assert (same["seeds_keras"], same["seeds_bytes"]) == (3, 3)
    assert same["estimate"] == pytest.approx(0.2)
    # Welch with equal sd 0.3 and n 3 on both sides: df 4, half-width t(4) * 0.3 * sqrt(2 / 3)
    assert same["high"] - same["estimate"] == pytest.approx(stats.t_quantile(0.975, 4) * 0.3 * math.sqrt(2 / 3))
    assert same["limit"] == pytest.approx(stats.t_quantile(0.975, 2) * 0.3 * math.sqrt(2))
    assert same["decision"] == checks.SAME_AS_A_SEED
    assert checks.draw_check(factorial, _drawn(tmp_path / "far", -5.0)).loc["best validation accuracy",
                                                                             "decision"] == checks.BEYOND_A_SEED
    wide = checks.draw_check(factorial, _drawn(tmp_path / "wide", 1.0, spread=1.5))
    assert wide.loc["best validation accuracy", "decision"] == checks.UNDECIDED
    one = checks.draw_check(factorial, _drawn(tmp_path / "one", 0.0, seeds=(0,)))
    assert set(one["decision"]) == {study.PENDING}


def test_draw_runs_must_be_model_bs_runs_with_the_byte_draw(factorial, tmp_path):  # noqa: F811
    """A run of the check that differs from Keras' run of its seed in more than the draw is refused."""
    out = write_run(tmp_path, "both", 0, val=[0.6] * 4, train_acc=[0.6] * 4, test_correct=0.6,
                    out=checks.DRAW_DIR / "seed0", dropout_draw="keras")
    with pytest.raises(ValueError, match=r"seed0: trained with .*dropout_draw='keras'"):
        checks.draw_check(factorial, checks.load_draw_runs(tmp_path))
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["config"] = {**manifest["config"], "dropout_draw": "bytes", "learning_rate": 0.01}
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"learning_rate=0.01"):
        checks.draw_check(factorial, checks.load_draw_runs(tmp_path))


def test_every_committed_draw_run_is_the_checks_run_on_the_studys_data():
    """The runs under results/dropout_draw (a fresh clone's): Model B at the study's protocol with the byte
    draw, trained where bf16 is native, on the data file of the study's runs."""
    drawn = checks.load_draw_runs(ROOT)
    assert drawn, "no committed dropout-draw runs"
    for run in drawn.values():
        assert run.config == dataclasses.replace(study.cell("both").config(run.config.seed), dropout_draw="bytes")
        assert all(seg.get("native_bf16") for seg in run.manifest["segments"]), run.path
    data = {run.manifest["data"]["sha256"] for run in [*drawn.values(), *study.load_study(ROOT).values()]}
    assert len(data) == 1


def test_draw_conclusion_is_true_for_every_state_of_the_check():
    def check(*decisions, low=-0.5):
        return pd.DataFrame({"decision": decisions, "low": low, "high": 1.0},
                            index=list(checks.DRAW_METRICS.values())[:len(decisions)])

    assert "not decided yet" in checks.draw_conclusion(check(study.PENDING, checks.SAME_AS_A_SEED))
    same = checks.draw_conclusion(check(checks.SAME_AS_A_SEED, checks.SAME_AS_A_SEED))
    assert "within the limit" in same and "wholly" not in same
    # within the limit and still wholly above zero: equivalent to a change of seed, and yet a difference
    above = checks.draw_conclusion(check(checks.SAME_AS_A_SEED, checks.SAME_AS_A_SEED, low=0.01))
    assert "within the limit" in above and above.endswith(
        "The interval lies wholly above zero on the best validation accuracy and the PublicTest accuracy (best "
        "epoch): a difference, but a smaller one than a change of seed makes.")
    beyond = checks.draw_conclusion(check(checks.SAME_AS_A_SEED, checks.BEYOND_A_SEED, checks.UNDECIDED))
    assert "On the PublicTest accuracy (best epoch) the difference lies beyond the limit" in beyond
    no_difference = checks.draw_conclusion(check(checks.SAME_AS_A_SEED, checks.UNDECIDED))
    assert no_difference.startswith("No measure shows a difference") and "PublicTest accuracy (best epoch) the" in \
        no_difference
    straddles = checks.draw_conclusion(check(checks.SAME_AS_A_SEED, checks.UNDECIDED, low=0.2))
    assert straddles.startswith("On the PublicTest accuracy (best epoch) the interval straddles the limit")


def test_speed_sentence_reads_the_benchmarks_record(tmp_path):
    assert "has not recorded a machine yet" in checks.speed_sentence(tmp_path)
    record = {"date": "2026-12-07T11:39:39+00:00", "command": "python benchmarks/train_speed.py --steps 30",
              "steps": 30, "native_bf16": ["avx512_bf16"],
              "ratios": {"b_over_a_bf16_keras": 1.2021, "b_over_a_bf16_bytes": 1.1453, "floor_bn": 1.094},
              "environment": {"cpu": "AMD EPYC", "cores": 2, "git_commit": "3f9c499" + "0" * 33}}
    (tmp_path / checks.TRAIN_SPEED).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / checks.TRAIN_SPEED).write_text(json.dumps(record))
    assert checks.speed_sentence(tmp_path) == (
        "On AMD EPYC, 2 cores with native bfloat16 (avx512_bf16), benchmarks/train_speed.py (median of 30 steps, "
        "commit 3f9c499, 2026-12-07) times Model B's bfloat16 training step at 1.20 times "
        "Model A's with Keras' draw and 1.15 times with the byte draw; batch normalization alone takes Model A to "
        "1.09 times its step.")
