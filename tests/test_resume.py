"""`--resume` goes on with the experiment its state file (state.json) names: stored settings fill
in the flags left at their defaults, contradicting ones are refused in one line; a folder
written before the one state format (search.json, an ablation's `units`) resumes."""

from __future__ import annotations

import pytest

from nas.ablate.plan import AblatePlan
from nas.campaign.resume import resumed_settings
from nas.campaign.settings import make_settings
from nas.errors import NasError
from nas.search.driver import _same_space
from nas.search.plan import SearchPlan


def search_settings(overrides=(), **values):
    """Search settings as the command line makes them (its words parsed once)."""
    return make_settings(SearchPlan, overrides, **values)


def ablate_settings(overrides=(), **values):
    return make_settings(AblatePlan, overrides, **values)


def resumed(given, stored=None):
    _same_space(given.plan.space, (stored or STARTED).plan.space, "s")
    return resumed_settings(given, stored or STARTED, name="s")

STARTED = search_settings(space="shufflenet", trials=20, name="s", budget="cpu", seed=2, asha=False,
                         max_macs=20e6, overrides=["data.root=/old", "train.lr=0.1"])


def test_a_bare_resume_goes_on_with_the_stored_experiment():
    bare = search_settings(space="shufflenet", trials=50, name="s", resume=True)
    got = resumed(bare)
    assert (got.plan.budget, got.plan.seed, got.plan.asha, got.plan.max_macs) == ("cpu", 2, False, 20e6)
    assert got.run.words() == ["data.root=/old", "train.lr=0.1"]
    assert got.plan.trials == 50 and got.resume  # how far to go is the command line's


def test_the_same_words_again_and_moved_data_are_accepted():
    again = search_settings(space="search_spaces/shufflenet.yaml", trials=50, name="s", resume=True,
                           budget="cpu", seed=2, asha=False, concurrency=1,
                           overrides=["train.lr=0.1", "data.root=/new", "device=cpu"])
    got = resumed(again)
    assert got.run.words() == ["train.lr=0.1", "data.root=/new", "device=cpu"]  # the data moved: its new place
    assert got.concurrency == 1


@pytest.mark.parametrize("changed, says", [
    ({"budget": "gpu"}, "started with --budget cpu; --resume keeps it (drop --budget gpu"),
    ({"scheduler": "moasha"}, "started with --scheduler auto"),
    ({"seed": 5}, "started with --seed 2"),
    ({"max_macs": 10e6}, "started with max_macs=2e+07"),
    ({"objectives": "val_acc,params"}, "started with --objectives val_acc,macs"),
    ({"overrides": ["train.lr=0.05"]}, "cannot change train.lr"),
    ({"overrides": ["train.epochs=3"]}, "cannot change train.epochs"),
    ({"space": "mobilenet_v2"}, "searches space 'shufflenet'"),
])
def test_a_word_that_contradicts_the_stored_experiment_is_refused(changed, says):
    given = search_settings(**{"space": "shufflenet", "name": "s", "resume": True, **changed})
    with pytest.raises(NasError, match="^search 's' ") as err:
        resumed(given)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_a_fresh_search_keeps_its_command_line():
    given = search_settings(space="shufflenet", budget="smoke", seed=3)
    assert resumed_settings(given, None, name="s") == given


def test_an_ablation_resumes_at_its_budget_and_words_and_grows_by_seeds():
    stored = ablate_settings(experiment="mobilenet_v1_width", seeds=3, name="a",
                            overrides=["data.root=/old", "train.epochs=3"])
    stored = stored.with_plan(budget="cpu")  # the driver stores the budget it resolved
    got = resumed_settings(ablate_settings(experiment="mobilenet_v1_width", seeds=5, name="a", resume=True),
                           stored, name="a")
    assert (got.plan.budget, got.plan.seeds, got.run.words()) == ("cpu", 5, ["data.root=/old", "train.epochs=3"])
    with pytest.raises(NasError, match="^ablation 'a' started with --budget cpu; --resume keeps it"):
        resumed_settings(ablate_settings(experiment="mobilenet_v1_width", budget="gpu", name="a", resume=True),
                         stored, name="a")


def test_an_ablation_resumed_with_another_experiment_is_refused_with_the_command_that_resumes_it():
    from nas.ablate.driver import _same_experiment
    from nas.ablate.experiment import load_experiment

    exp = load_experiment("mobilenet_v1_width")
    _same_experiment(exp, {"name": exp.name}, "a")
    _same_experiment(exp, None, "a")  # a fresh ablation
    with pytest.raises(NasError, match="ran experiment dsc_cnn_act_conv, not mobilenet_v1_width; resume it"
                                       " with nas ablate experiments/dsc_cnn_act_conv.yaml --name a --resume"):
        _same_experiment(exp, {"name": "dsc_cnn_act_conv", "path": "experiments/dsc_cnn_act_conv.yaml"}, "a")


def test_a_resumed_search_estimates_its_time_from_its_own_trained_trials():
    """Its trials' wall spans, not a random sample's: the free ones and a kill's do not count."""
    import datetime as dt
    import types

    import optuna

    from nas.search.driver import OBSERVED_TRIALS, _observed_trial_s
    from nas.search.searcher import STATUS_ATTR

    study = optuna.create_study(directions=["maximize", "minimize"])
    start = dt.datetime(2026, 1, 1)

    def add(seconds: float, status: str, state=optuna.trial.TrialState.COMPLETE) -> None:
        study.add_trial(optuna.trial.FrozenTrial(
            number=0, state=state, value=None, values=[0.5, 1e6] if state.name == "COMPLETE" else None,
            datetime_start=start, datetime_complete=start + dt.timedelta(seconds=seconds), params={},
            distributions={}, user_attrs={STATUS_ATTR: status}, system_attrs={}, intermediate_values={},
            trial_id=0))

    s = types.SimpleNamespace(study=study, closed={})
    for _ in range(OBSERVED_TRIALS - 1):
        add(100.0, "COMPLETED")
    add(0.1, "INFEASIBLE")
    add(9000.0, "KILLED", optuna.trial.TrialState.FAIL)  # closed on resume: its span holds the downtime
    assert _observed_trial_s(s) is None  # too few yet: the measured training rate answers
    add(60.0, "PRUNED", optuna.trial.TrialState.PRUNED)
    assert _observed_trial_s(s) == (pytest.approx(((OBSERVED_TRIALS - 1) * 100.0 + 60.0) / OBSERVED_TRIALS),
                                    OBSERVED_TRIALS)
