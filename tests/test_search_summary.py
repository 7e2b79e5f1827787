"""The end-of-search summary: the front's hypervolume with its reference point, and for each
paper reference net the front members that dominate it on the same budget (or that none does)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from nas.pareto import parse_objectives
from nas.search.results import SearchOutcome, found_summary, mark_front


def _outcome(rows):
    df = pd.DataFrame(rows, columns=["trial", "status", "val_acc", "macs", "params", "epochs", "reference"])
    objectives = parse_objectives("val_acc,macs")
    front = mark_front(df, objectives)
    return SearchOutcome("s", Path("."), df, front, None, 1.0, objectives), objectives


def test_reference_nets_are_placed_against_the_front():
    outcome, objectives = _outcome([
        (0, "COMPLETED", 0.40, 3e6, 1, 4, "paper small"),   # beaten by trial 3
        (1, "PRUNED", 0.20, 10e6, 1, 1, "paper medium"),
        (2, "INFEASIBLE", None, 40e6, 1, None, "paper large"),
        (3, "COMPLETED", 0.45, 2e6, 1, 4, ""),
        (4, "COMPLETED", 0.60, 9e6, 1, 4, ""),
        (5, "COMPLETED", 0.30, 1e6, 1, 4, "paper tiny"),     # on the front
    ])
    lines = found_summary(outcome, objectives)
    assert lines[0].startswith("front hypervolume ") and "reference point val_acc=0" in lines[0]
    text = "\n".join(lines)
    assert "paper small: dominated by front trial(s) 3" in text
    assert "paper medium: pruned after 1 epoch(s)" in text
    assert "paper large: over the limits, not trained" in text
    assert "paper tiny: on the front itself" in text


def test_a_reference_on_the_front_and_a_search_without_references():
    outcome, objectives = _outcome([(0, "COMPLETED", 0.5, 1e6, 1, 4, "paper"),
                                    (1, "COMPLETED", 0.6, 2e6, 1, 4, "")])
    assert "paper: on the front itself" in "\n".join(found_summary(outcome, objectives))
    outcome, objectives = _outcome([(0, "COMPLETED", 0.5, 1e6, 1, 4, "")])
    assert len(found_summary(outcome, objectives)) == 1


def test_queued_reference_points_the_budget_did_not_reach_are_not_trials():
    import optuna

    from nas.search.results import trials_frame

    study = optuna.create_study(directions=["maximize", "minimize"])
    for ref in ("a", "b"):
        study.enqueue_trial({"x": 1}, user_attrs={"reference": ref})
    trial = study.ask()
    trial.suggest_int("x", 0, 2)
    trial.set_user_attr("nas_status", "COMPLETED")
    study.tell(trial, [0.5, 1e6])
    df = trials_frame(study, parse_objectives("val_acc,macs"), {}, {})
    assert list(df.trial) == [0] and list(df.status) == ["COMPLETED"]  # "b" was never sampled
