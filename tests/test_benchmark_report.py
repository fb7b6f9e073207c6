"""`benchmarks/report.py`: the statistics, the validation grid search and
the markdown writer every benchmark script shares (checked against
hand-computed values; pure numpy / scipy, so it runs on every backend)."""

import argparse
import math
import os
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "benchmarks")
sys.path.insert(0, BENCHMARKS)  # as the benchmark scripts import it
import report  # noqa: E402


def test_paired_test_not_significant_by_hand():
    # diffs (treatment - baseline) = [2, 3, 0, 3]: mean 2, deviations
    # [0, 1, -2, 1], sum of squares 6, variance (ddof 1) 6 / 3 = 2,
    # standard error sqrt(2) / sqrt(4) = 1 / sqrt(2), t = 2 sqrt(2), df 3.
    result = report.paired_test([90, 92, 91, 89], [92, 95, 91, 92])
    assert result["n"] == 4
    assert result["mean_diff"] == pytest.approx(2.0)
    assert result["std_err"] == pytest.approx(1 / math.sqrt(2))
    assert result["t"] == pytest.approx(2 * math.sqrt(2))
    # Student's t with 3 degrees of freedom has a closed-form CDF:
    # two-sided p = 1 - (2 / pi) (atan(x) + x / (1 + x^2)), x = t / sqrt(3).
    x = 2 * math.sqrt(2) / math.sqrt(3)
    p = 1 - 2 / math.pi * (math.atan(x) + x / (1 + x * x))
    assert result["p"] == pytest.approx(p, rel=1e-9)
    # Table value: |t| must exceed 3.182 (df 3, two-sided 5%).
    assert 0.05 < result["p"] < 0.1
    assert result["significant"] is False


def test_paired_test_significant_and_sign_by_hand():
    # diffs = [1.1, 1.0, 1.2]: mean 1.1, std (ddof 1) 0.1, standard error
    # 0.1 / sqrt(3), t = 11 sqrt(3), df 2; for df 2 the two-sided p is
    # 1 - t / sqrt(2 + t^2).
    result = report.paired_test([1.0, 2.0, 3.0], [2.1, 3.0, 4.2])
    t = 11 * math.sqrt(3)
    assert result["mean_diff"] == pytest.approx(1.1)
    assert result["std_err"] == pytest.approx(0.1 / math.sqrt(3))
    assert result["t"] == pytest.approx(t)
    assert result["p"] == pytest.approx(1 - t / math.sqrt(2 + t * t),
                                        rel=1e-6)
    assert result["significant"] is True
    # Swapping the arms flips the sign, not the p-value.
    swapped = report.paired_test([2.1, 3.0, 4.2], [1.0, 2.0, 3.0])
    assert swapped["mean_diff"] == pytest.approx(-1.1)
    assert swapped["t"] == pytest.approx(-t)
    assert swapped["p"] == pytest.approx(result["p"])
    # A stricter level: the same numbers no longer clear it.
    assert report.paired_test([1.0, 2.0, 3.0], [2.1, 3.0, 4.2],
                              alpha=1e-4)["significant"] is False


def test_paired_test_is_paired_not_pooled():
    # Large spread between seeds, a constant-ish gain within each seed:
    # the pooled (unpaired) spread would call this a tie.
    baseline = [60.0, 75.0, 90.0]
    treatment = [61.0, 76.5, 91.2]
    result = report.paired_test(baseline, treatment)
    assert result["mean_diff"] == pytest.approx(1.2333333)
    assert result["significant"] is True


def test_paired_test_one_seed_has_no_test():
    result = report.paired_test([80.0], [83.5])
    assert result["mean_diff"] == pytest.approx(3.5)
    assert result["n"] == 1
    assert result["std_err"] is None
    assert result["t"] is None
    assert result["p"] is None
    assert result["significant"] is False


def test_tune_widens_past_a_winning_edge():
    calls = []

    def run(lr):  # validation accuracy peaking at 8
        calls.append(lr)
        return (-abs(math.log2(lr) - 3), f"model at {lr}")

    best, tried = report.tune(run, [1, 2, 4])
    assert best == 8
    assert calls == [1, 2, 4, 8, 16]  # 16 loses: 8 is inside the grid
    assert tried[8] == (0.0, "model at 8")

    best, tried = report.tune(lambda lr: (-lr,), [1, 2, 4], max_extend=2)
    assert best == 0.25 and sorted(tried) == [0.25, 0.5, 1, 2, 4]

    best, tried = report.tune(lambda lr: (-abs(lr - 2),), [1, 2, 4])
    assert best == 2 and sorted(tried) == [1, 2, 4]  # no widening


def test_write_markdown_keeps_the_reading(tmp_path):
    path = str(tmp_path / "results.md")
    report.write_markdown(path, "# Table\n\n| a |\n|---|\n| 1 |\n")
    with open(path) as f:
        assert f.read() == "# Table\n\n| a |\n|---|\n| 1 |\n"
    with open(path, "a") as f:
        f.write("\n## Reading\n\nWritten by hand: 1 is small.\n")
    report.write_markdown(path, "# Table\n\n| a |\n|---|\n| 2 |\n\n\n")
    with open(path) as f:
        assert f.read() == ("# Table\n\n| a |\n|---|\n| 2 |\n\n"
                            "## Reading\n\nWritten by hand: 1 is small.\n")


def test_run_info_fields():
    import keras

    info = report.run_info()
    assert set(info) >= {"commit", "uncommitted_changes", "backend",
                         "keras", "cpu", "cpu_flags", "cpu_count"}
    assert info["backend"] == keras.backend.backend()
    assert isinstance(info["cpu_flags"], list)


def _qa_row(seed, curve, seconds=600, steps=2000):
    """A question-answering row of benchmarks/multimodal/run.py."""
    return {"fusion": "film", "arch": "vit+pos", "encoder": "random",
            "seed": seed, "steps": steps, "endless_batches": True,
            "train_seconds": seconds,
            "curve": [{"step": s, "relational": r, "non_relational": n}
                      for s, r, n in curve],
            "test": {"relational": 0.5, "non_relational": 0.9}}


def test_budget_targets_count_seeds_and_cut_the_curve_at_the_budget():
    sys.path.insert(0, os.path.join(BENCHMARKS, "multimodal"))
    import run

    fast = [(1000, 0.5, 0.96), (2000, 0.5, 0.99)]
    # 2,000 steps in 1,200 s: step 1,000 is at 10 minutes, 2,000 at 20.
    late = [(1000, 0.5, 0.60), (2000, 0.5, 0.99)]
    rows = [_qa_row(0, fast, 1200), _qa_row(1, late, 1200),
            _qa_row(2, fast, 1200)]
    lines = run.target_lines(rows, batch=64)
    fifteen = next(line for line in lines if line.startswith("- 15 min"))
    assert "met in 2 of 3 seeds" in fifteen
    assert "seed 1: 60.0 / 50.0 at step 1000" in fifteen
    rows[1] = _qa_row(1, fast, 1200)
    fifteen = next(line for line in run.target_lines(rows, batch=64)
                   if line.startswith("- 15 min"))
    assert ": met:" in fifteen
    sixty = next(line for line in run.target_lines(rows, batch=64)
                 if line.startswith("- 60 min"))
    assert "**missed**" in sixty  # relational 50% < 90%
    # Minutes depend on the machine: a seed whose row records its run
    # says which CPU; rows made before rows recorded it say nothing.
    rows[2]["run"] = {"cpu_flags": ["avx2"]}
    rows[1]["run"] = {"cpu_flags": ["avx512f", "avx2"]}
    fifteen = next(line for line in run.target_lines(rows, batch=64)
                   if line.startswith("- 15 min"))
    assert "seed 2 (AVX2 CPU): 96.0 / 50.0" in fifteen
    assert "seed 1 (AVX-512 CPU): " in fifteen
    assert "seed 0: 96.0" in fifteen


def test_a_rerun_recognises_the_rows_it_already_has():
    sys.path.insert(0, os.path.join(BENCHMARKS, "multimodal"))
    import run

    # What `main` plans (every setting, `fusion` None for retrieval) must
    # have the key of the row that run wrote, or a rerun repeats it.
    settings = {"arch": "vit", "encoder": "random", "steps": 1530,
                "train_scenes": 9800, "seed": 0, "text": "bert",
                "optimizer": "adamw"}
    stored = {"arch": "vit", "encoder": "random", "steps": 1530,
              "seed": 0, "loss": "siglip"}
    assert run._key(dict(settings, fusion=None, loss="siglip")) == (
        run._key(stored))
    assert run._key(dict(settings, fusion=None, loss="clip")) != (
        run._key(stored))
    qa = _qa_row(0, [(1000, 0.5, 0.5)])
    assert run._key(dict(settings, fusion="film", arch="vit+pos",
                         steps=2000, loss="clip")) == run._key(qa)
    # A row with a wider or deeper fusion is another run, and its label
    # says so; the settings a plan writes are those the row records.
    args = argparse.Namespace(
        film_readout="max_pool", fusion_dim=256, fusion_layers=4,
        relational_shortcut=False)
    wide = dict(qa, fusion="film_relational",
                **run.variant_fields("film_relational", args))
    assert wide["fusion_dim"] == 256 and "readout" not in wide
    assert run._key(wide) != run._key(dict(qa, fusion="film_relational"))
    assert "(fusion width 256) (fusion layers 4)" in run._variant(wide)
    args.fusion_dim = args.fusion_layers = None
    assert run.variant_fields("film", args) == {"readout": "max_pool"}
    # The FiLM shortcut: a film_relational setting, another run when on.
    args.relational_shortcut = True
    assert run.variant_fields("film", args) == {"readout": "max_pool"}
    short = dict(qa, fusion="film_relational",
                 **run.variant_fields("film_relational", args))
    assert short["shortcut"] is True
    assert run._key(short) != run._key(dict(qa, fusion="film_relational"))
    assert run._variant(short).endswith(" (FiLM shortcut)")
    with pytest.raises(SystemExit):
        run.main(["--stage", "table", "--fusions", "film",
                  "--relational-shortcut"])


def test_plan_runs_the_fusions_main_checks_options_against():
    sys.path.insert(0, os.path.join(BENCHMARKS, "multimodal"))
    import run

    args = argparse.Namespace(
        stage="long", fusions=["film", "relational"],
        long_fusion="film_relational", encoders=["random", "simmim"],
        steps=6000, long_steps=16000)
    assert run.stage_fusions(args) == ["film_relational"]
    assert run.plan(args, data=None) == [
        ("long", "film_relational", "random", 16000),
        ("long", "film_relational", "simmim", 16000)]
    args.stage = "table"
    assert run.stage_fusions(args) == ["film", "relational"]
    assert [p[1:] for p in run.plan(args, data=None)] == [
        ("film", "random", 6000), ("film", "simmim", 6000),
        ("relational", "random", 6000), ("relational", "simmim", 6000)]
    args.stage = "pretrain"
    assert run.stage_fusions(args) == []
    # The long stage runs --long-fusion, not --fusions: the shortcut is
    # accepted there only when the long fusion is film_relational.
    with pytest.raises(SystemExit):
        run.main(["--stage", "long", "--long-fusion", "film",
                  "--fusions", "film_relational", "--relational-shortcut"])


def test_slow_phase_pairs_steps_to_threshold_by_seed():
    sys.path.insert(0, os.path.join(BENCHMARKS, "multimodal"))
    import run

    def row(encoder, seed, reach_at):
        curve = [(s, 0.5, 0.95 if s >= reach_at else 0.6)
                 for s in (500, 1000, 1500, 2000)]
        return dict(_qa_row(seed, curve, steps=2000), encoder=encoder)

    # random reaches 90% at 500 / 1000 / 1000, SimMIM at 1000 / 1500 /
    # 2000: differences 500, 500, 1000 -> mean 666.7, std (ddof 1)
    # 288.7, standard error 166.7.
    # (Rows in run order, not seed order: the line lists by seed.)
    rows = [row("random", 0, 500), row("random", 1, 1000),
            row("random", 2, 1000), row("simmim", 0, 1000),
            row("simmim", 2, 2000), row("simmim", 1, 1500)]
    lines = run.seed_summary(rows, batch=64)
    assert any("simmim, 2000 steps, seeds [0, 1, 2]" in line
               and line.endswith("1000/never, 1500/never, 2000/never")
               for line in lines), lines
    line = next(line for line in lines if "steps to 90%" in line
                and "SimMIM - random" in line)
    assert "+667 +- 167" in line
    assert "later in 3, earlier in 0 of 3 seeds" in line
    assert "evaluations every 500 steps" in line
    # The same difference in every seed: no t-test on zero spread.
    rows[4] = row("simmim", 2, 1500)
    line = next(line for line in run.seed_summary(rows, batch=64)
                if "SimMIM - random init, steps" in line)
    assert "+500 in every seed" in line and "no t-test" in line
    # A seed that never got there: no comparison of steps.
    rows[3] = row("simmim", 0, 10**6)
    assert not any("SimMIM - random init, steps" in line
                   for line in run.seed_summary(rows, batch=64))


def test_parse_part_splits_and_names_bad_values():
    assert report.parse_part("1/2") == (1, 2)
    for bad in ("2/2", "-1/2", "1", "a/b"):
        with pytest.raises(argparse.ArgumentTypeError, match=f"got '{bad}'"):
            report.parse_part(bad)


def test_out_prefix_makes_the_folder_before_the_run(tmp_path):
    prefix = str(tmp_path / "new" / "deeper" / "results")
    assert report.out_prefix(prefix) == prefix
    assert (tmp_path / "new" / "deeper").is_dir()
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(argparse.ArgumentTypeError, match="a_file"):
        report.out_prefix(str(blocker / "results"))
