"""The ablation report's statistics: 95% intervals over seeds, the p-value against the reference
cell, and whether the paper's direction of effect is reproduced (pure tables, no training)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from nas.ablate.experiment import experiment_files, load_experiment
from nas.ablate.report import (display_frame, format_report, paper_direction, reference_cell,
                               summary_frame)
from nas.stats import ci95, welch_p_value


def _rows(exp, accs: dict[str, list[float | None]]) -> pd.DataFrame:
    rows = []
    for cell in exp.cells():
        for seed, acc in enumerate(accs.get(cell.label, [])):
            rows.append({"cell": cell.label, **{k: str(v) for k, v in cell.values.items()}, "seed": seed,
                         "macs": 1e8, "params": 2e6, "val_acc": acc, "test_acc": acc, "epochs": 1,
                         "status": "COMPLETED" if acc is not None else "FAILED",
                         "error": "" if acc is not None else "RuntimeError: boom"})
    return pd.DataFrame(rows)


def test_reference_cell_changes_one_factor_to_its_first_level():
    exp = load_experiment("shufflenet_shuffle")
    ref = {c.label: (r.label if (r := reference_cell(exp, c)) else None) for c in exp.cells()}
    assert ref == {"groups=3 shuffle=true": None,
                   "groups=3 shuffle=false": "groups=3 shuffle=true",
                   "groups=8 shuffle=true": "groups=3 shuffle=true",
                   "groups=8 shuffle=false": "groups=8 shuffle=true"}
    width = load_experiment("mobilenet_v1_width")
    assert [r.label if (r := reference_cell(width, c)) else None for c in width.cells()] == [
        None, "width=1.0", "width=1.0", "width=1.0"]


@pytest.mark.parametrize("name,cell,ref,expected", [
    ("mobilenet_v1_width", "width=0.25", "width=1.0", -1),            # 50.6% vs 70.6%
    ("mobilenet_v1_conv", "block=conv", "block=ds", +1),              # 71.7% vs 70.6%
    ("mobilenet_v1_resolution", "resolution=18", "resolution=32", -1),
    ("shufflenet_shuffle", "groups=3 shuffle=false", "groups=3 shuffle=true", -1),  # error 34.5 > 32.6
    ("shufflenet_shuffle", "groups=8 shuffle=true", "groups=3 shuffle=true", +1),   # error 32.4 < 32.6
    ("shufflenet_groups", "groups=2", "groups=1", +1),
    ("mobilenet_v2_proj_act", "proj_act=relu6", "proj_act=linear", -1),  # "lower than linear"
    ("mobilenet_v2_proj_act", "proj_act=relu", "proj_act=linear", None),  # "not in the paper"
    ("mobilenet_v2_residual", "residual=false", "residual=true", -1),
    ("dsc_cnn_act_conv", "conv=plain act=relu", "conv=ds act=relu", +1),  # "baseline" vs "slower"
    ("dsc_cnn_act_conv", "conv=ds act=selu", "conv=ds act=relu", None),  # same text: no claim
])
def test_paper_direction_read_from_the_paper_cells(name, cell, ref, expected):
    assert paper_direction(load_experiment(name), cell, ref) == expected


def test_every_experiment_gets_a_reference_and_a_direction_or_none():
    for path in experiment_files():
        exp = load_experiment(path)
        for cell in exp.cells():
            ref = reference_cell(exp, cell)
            if ref is not None:
                assert sum(cell.values[k] != ref.values[k] for k in cell.values) == 1
                assert paper_direction(exp, cell.label, ref.label) in (-1, 1, None)


def test_summary_intervals_p_values_and_verdicts():
    exp = load_experiment("mobilenet_v1_width")
    accs = {"width=1.0": [0.80, 0.81, 0.79], "width=0.75": [0.70, 0.71, 0.72],  # clearly lower: yes
            "width=0.5": [0.80, 0.78, 0.82],  # the same as width 1.0: not significant
            "width=0.25": [0.90, None]}  # one completed seed: too few
    summary = summary_frame(exp, _rows(exp, accs), "synthetic").set_index("cell")
    base, lower, same, few = (summary.loc[c] for c in ("width=1.0", "width=0.75", "width=0.5", "width=0.25"))
    assert (base.test_acc_ci95_low, base.test_acc_ci95_high) == pytest.approx(ci95([0.80, 0.81, 0.79]))
    assert (lower.val_acc_ci95_low, lower.val_acc_ci95_high) == pytest.approx(ci95([0.70, 0.71, 0.72]))
    assert math.isnan(few.test_acc_ci95_low) and math.isnan(few.test_acc_ci95_high)
    assert base.reference == "" and math.isnan(base.p_value) and base.reproduced == ""
    assert lower.reference == "width=1.0" and lower.paper_direction == "lower"
    assert lower.p_value == pytest.approx(welch_p_value([0.70, 0.71, 0.72], [0.80, 0.81, 0.79]))
    assert lower.test_acc_diff == pytest.approx(-0.09)
    assert lower.p_value < 0.05 and lower.reproduced == "yes"
    assert same.p_value > 0.05 and same.reproduced == "not significant"
    assert math.isnan(few.p_value) and few.reproduced == "too few seeds"
    # an effect the wrong way round
    flipped = summary_frame(exp, _rows(exp, {"width=1.0": [0.70, 0.71], "width=0.75": [0.80, 0.81]}))
    assert flipped.set_index("cell").loc["width=0.75", "reproduced"] == "opposite"
    # the columns that were there before are all still there
    assert {"cell", "width", "macs", "params", "val_acc_mean", "val_acc_std", "test_acc_mean",
            "test_acc_std", "n_seeds", "paper", "status", "error", "data"} <= set(summary.reset_index().columns)


def test_printed_report_states_intervals_p_and_reproduction(tmp_path):
    exp = load_experiment("shufflenet_shuffle")
    accs = {"groups=3 shuffle=true": [0.80, 0.81, 0.79], "groups=3 shuffle=false": [0.70, 0.71, 0.72],
            "groups=8 shuffle=true": [0.79, 0.81, 0.80], "groups=8 shuffle=false": [0.60]}
    summary = summary_frame(exp, _rows(exp, accs), "synthetic")
    assert list(display_frame(exp, summary, 3).columns)[-1] == "paper (Table 3)"  # default unchanged
    table = display_frame(exp, summary, 3, stats=True)
    assert list(table.columns)[-5:] == ["val 95% CI", "test 95% CI", "p (test)", "reproduced (paper)",
                                        "paper (Table 3)"]
    assert table["p (test)"].tolist()[0] == "ref"
    assert table["p (test)"].tolist()[1].endswith(" vs shuffle=true")
    assert table["p (test)"].tolist()[2].endswith(" vs groups=3")
    assert table["reproduced (paper)"].tolist() == ["-", "yes (lower)", "not significant (higher)",
                                                   "too few seeds (lower)"]
    lo, hi = ci95([0.80, 0.81, 0.79])
    assert table["test 95% CI"].tolist()[0] == f"[{100 * lo:.1f}, {100 * hi:.1f}]"
    report = format_report(exp, summary, n_seeds=3, caption="data: synthetic")
    assert "Welch's t-test" in report and "p < 0.05" in report
    assert "paper's direction reproduced in 1 of 3 comparisons (1 yes, 1 not significant, 1 too few seeds)" in report
    # summary.csv read back (empty strings become NaN) still prints
    summary.to_csv(tmp_path / "summary.csv", index=False)
    again = pd.read_csv(tmp_path / "summary.csv")
    assert display_frame(exp, again, 3, stats=True)["reproduced (paper)"].tolist() == table["reproduced (paper)"].tolist()
