"""Sampler choices of the search (fast: no Ray, no training)."""

from __future__ import annotations

import optuna
import pytest

from nas.search.searcher import SAMPLERS, nsga2_population


@pytest.mark.parametrize("trials, population", [(8, 8), (50, 12), (200, 50), (1000, 50)])
def test_nsga2_population_gives_generations_to_select_in(trials, population):
    assert nsga2_population(trials) == population
    if trials >= 32:  # at least four generations whenever the budget allows
        assert trials / population >= 4


def test_samplers_are_seeded_and_sized_by_the_trial_budget():
    nsga2 = SAMPLERS["nsga2"](3, 50)
    assert isinstance(nsga2, optuna.samplers.NSGAIISampler)
    assert nsga2._population_size == 12
    draws = []
    for _ in range(2):
        study = optuna.create_study(sampler=SAMPLERS["random"](7, 10))
        draws.append([study.ask().suggest_int("x", 0, 10**6) for _ in range(5)])
    assert draws[0] == draws[1]


def test_an_architecture_is_trained_once_and_resampling_it_is_free(tmp_path):
    from nas.errors import SpecError
    from nas.pareto import parse_objectives
    from nas.search.searcher import Limits, OptunaSearcher
    from nas.space import load_space

    path = tmp_path / "two.yaml"
    path.write_text("name: two\nbase: shufflenet_v1_g3\nchoices:\n"
                    "  kernel: {options: [3, 5], set: stages.*.kernel}\n")
    space = load_space(str(path))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=SAMPLERS["random"](0, 3))
    skipped = []
    searcher = OptunaSearcher(study, space, parse_objectives("val_acc,macs"),
                              to_spec=lambda p: space.to_spec(p, resolution=32, num_classes=10),
                              limits=Limits(), max_epochs=2, trials=3, on_infeasible=skipped.append)
    kernels = []
    for trial_id in ("a", "b"):
        config = searcher.suggest(trial_id)
        kernels.append(config["kernel"])
        searcher.on_trial_complete(trial_id, {"epoch": 2, "val_acc": 0.5, "macs": 1e6})
    assert sorted(kernels) == [3, 5]  # the second trial was never a retrain of the first
    assert all(s.status == "DUPLICATE" and s.duplicate_of is not None for s in skipped)
    with pytest.raises(SpecError, match="already trained"):  # the space is exhausted
        searcher.suggest("c")
    statuses = {t.user_attrs.get("nas_status") for t in study.trials}
    assert statuses == {"COMPLETED", "DUPLICATE"}


def test_a_sampled_spec_is_checked_once_and_travels_to_the_job_by_value(tmp_path, monkeypatch):
    """Sampler -> Tune config -> recorder and worker: one frozen NetSpec, validated once."""
    import dataclasses
    import pickle

    import nas
    import nas.spec
    from nas.config import RunConfig
    from nas.job import Job
    from nas.pareto import parse_objectives
    from nas.search.recorder import split_config
    from nas.search.searcher import Limits, OptunaSearcher
    from nas.search.trial import SPEC_KEY
    from nas.space import load_space

    path = tmp_path / "one.yaml"
    path.write_text("name: one\nbase: shufflenet_v1_g3\nchoices:\n"
                    "  kernel: {options: [3], set: stages.*.kernel}\n")
    space = load_space(str(path))
    checks = []
    real = nas.spec.validate
    monkeypatch.setattr(nas.spec, "validate", lambda spec: checks.append(spec.name) or real(spec))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=SAMPLERS["random"](0, 1))
    searcher = OptunaSearcher(study, space, parse_objectives("val_acc,macs"),
                              to_spec=lambda p: space.to_spec(p, resolution=32, num_classes=10),
                              limits=Limits(), max_epochs=2, trials=1, on_infeasible=lambda s: None)
    config = searcher.suggest("a")
    spec = config[SPEC_KEY]
    assert isinstance(spec, nas.NetSpec) and spec.input.resolution == 32
    assert len(checks) == 1  # when it was sampled
    shipped = pickle.loads(pickle.dumps(config))  # what Tune hands the worker
    assert shipped[SPEC_KEY] == spec and split_config(config)[2] is spec
    job = Job(shipped[SPEC_KEY], RunConfig(), test=False)
    nas.build_model(job.spec)
    nas.count(job.spec)
    assert len(checks) == 1  # the recorder, the worker, the plan and the counter check nothing again
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.width = 2.0


def _searcher(tmp_path, trials=4, limits=None, sampler="nsga2"):
    from nas.pareto import parse_objectives
    from nas.search.searcher import Limits, OptunaSearcher
    from nas.space import load_space

    space = load_space("shufflenet")
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=SAMPLERS[sampler](0, trials))
    skipped = []
    searcher = OptunaSearcher(study, space, parse_objectives("val_acc,macs"),
                              to_spec=lambda p: space.to_spec(p, resolution=32, num_classes=10),
                              limits=limits or Limits(), max_epochs=4, trials=trials,
                              on_infeasible=skipped.append)
    return study, searcher, skipped


def test_pruned_trials_reach_the_sampler_with_their_rung_values(tmp_path):
    study, searcher, _ = _searcher(tmp_path)
    config = searcher.suggest("a")
    searcher.on_trial_complete("a", {"epoch": 1, "val_acc": 0.31, "macs": config["_nas_costs"]["macs"]})
    trial = study.trials[-1]
    assert trial.user_attrs["nas_status"] == "PRUNED" and trial.user_attrs["epochs"] == 1
    # told COMPLETE with its rung's values: NSGA-II and TPE build on it (they skip PRUNED/FAIL)
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert trial.values == [0.31, config["_nas_costs"]["macs"]]


def test_infeasible_samples_are_never_generation_members(tmp_path):
    from nas.search.searcher import Limits

    study, searcher, skipped = _searcher(tmp_path, trials=2, limits=Limits(max_macs=4e6))
    for trial_id in ("a", "b"):
        config = searcher.suggest(trial_id)
        assert config["_nas_costs"]["macs"] <= 4e6  # only feasible ones are scheduled
        searcher.on_trial_complete(trial_id, {"epoch": 4, "val_acc": 0.5, "macs": config["_nas_costs"]["macs"]})
    assert skipped and all(s.status == "INFEASIBLE" for s in skipped)
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 2  # the generation is the trained trials
    infeasible = [t for t in study.trials if t.user_attrs.get("nas_status") == "INFEASIBLE"]
    assert infeasible and all(t.state == optuna.trial.TrialState.FAIL for t in infeasible)
    assert all(t.user_attrs["macs"] > 4e6 for t in infeasible)


def test_tpe_learns_the_limits_from_free_samples_and_does_not_stall(tmp_path):
    """TPE has no generations: over-budget samples reach it as constraint violations, so it
    stops proposing the over-budget region (told FAIL, it never saw it and stalled at 10)."""
    from nas.pareto import parse_objectives
    from nas.search.searcher import OBSERVE_FREE, Limits, OptunaSearcher
    from nas.space import load_space

    space = load_space("shufflenet")
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=SAMPLERS["tpe"](0, 30))
    searcher = OptunaSearcher(study, space, parse_objectives("val_acc,macs"),
                              to_spec=lambda p: space.to_spec(p, resolution=32, num_classes=10),
                              limits=Limits(max_macs=25e6), max_epochs=4, trials=30,
                              on_infeasible=lambda s: None, observe_free="tpe" in OBSERVE_FREE)
    for i in range(30):
        config = searcher.suggest(str(i))
        macs = config["_nas_costs"]["macs"]
        assert macs <= 25e6
        searcher.on_trial_complete(str(i), {"epoch": 4, "val_acc": 0.3 + 1e-9 * macs, "macs": macs})
    trained = [t for t in study.trials if t.user_attrs.get("nas_status") == "COMPLETED"]
    assert len(trained) == 30


def test_gp_is_told_duplicates_with_constraints_like_every_other_trial(tmp_path):
    """Optuna's GP sampler refuses a study whose told trials carry different constraint counts;
    a duplicate told without them crashed the next ask."""
    from nas.pareto import parse_objectives
    from nas.search.searcher import OBSERVE_FREE, Limits, OptunaSearcher
    from nas.space import load_space

    path = tmp_path / "four.yaml"
    path.write_text("name: four\nbase: shufflenet_v1_g3\nchoices:\n"
                    "  kernel: {options: [3, 5], set: stages.*.kernel}\n"
                    "  shuffle: {options: [true, false], set: stages.*.shuffle}\n")
    space = load_space(str(path))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=SAMPLERS["gp"](0, 4))
    searcher = OptunaSearcher(study, space, parse_objectives("val_acc,macs"),
                              to_spec=lambda p: space.to_spec(p, resolution=32, num_classes=10),
                              limits=Limits(max_macs=1e9), max_epochs=2, trials=4,
                              on_infeasible=lambda s: None, observe_free="gp" in OBSERVE_FREE)
    for i in range(4):  # the space has 4 points: the GP re-proposes trained ones (duplicates)
        config = searcher.suggest(str(i))
        searcher.on_trial_complete(str(i), {"epoch": 2, "val_acc": 0.4 + 0.01 * i,
                                            "macs": config["_nas_costs"]["macs"]})
    told = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len({len(t.constraints) for t in told}) == 1
    assert {t.user_attrs["nas_status"] for t in told} == {"COMPLETED", "DUPLICATE"}


class _Stubborn(optuna.samplers.BaseSampler):
    """A degenerate sampler that proposes one architecture only (the first option of every
    choice), as TPE can while that architecture's trial is still running."""

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def sample_independent(self, study, trial, param_name, param_distribution):
        if isinstance(param_distribution, optuna.distributions.CategoricalDistribution):
            return param_distribution.choices[0]
        return param_distribution.low


def test_a_sampler_stuck_on_a_running_architecture_does_not_stall_the_search(tmp_path):
    """Its re-proposals are free DUPLICATE samples told FAIL; after RANDOM_AFTER_FREE of them
    in a row a random point is queued, so the next trial is a new architecture, not a SpecError
    after MAX_CONSECUTIVE_INFEASIBLE asks."""
    from nas.pareto import parse_objectives
    from nas.search.searcher import RANDOM_AFTER_FREE, Limits, OptunaSearcher
    from nas.space import load_space

    space = load_space("shufflenet")
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=_Stubborn())
    skipped = []
    searcher = OptunaSearcher(study, space, parse_objectives("val_acc,macs"),
                              to_spec=lambda p: space.to_spec(p, resolution=32, num_classes=10),
                              limits=Limits(), max_epochs=4, trials=3, on_infeasible=skipped.append)
    first = searcher.suggest("a")  # still running when the next asks come
    keys = ("_nas_trial", "_nas_spec", "_nas_costs")
    second = searcher.suggest("b")
    assert {k: v for k, v in second.items() if k not in keys} != {k: v for k, v in first.items() if k not in keys}
    assert len(skipped) == RANDOM_AFTER_FREE and all(s.duplicate_of == 0 for s in skipped)
    assert study.trials[second["_nas_trial"]].user_attrs["fallback"] == "random"


def test_auto_picks_ehvi_where_its_costs_are_known_and_gp_elsewhere(tmp_path):
    from nas.pareto import parse_objectives
    from nas.search.searcher import pick_sampler
    from nas.space import load_space

    shufflenet = load_space("shufflenet")
    assert pick_sampler("auto", parse_objectives("val_acc,macs"), shufflenet) == "ehvi"
    assert pick_sampler("auto", parse_objectives("val_acc,params"), shufflenet) == "ehvi"
    assert pick_sampler("auto", parse_objectives("val_acc,macs,params"), shufflenet) == "gp"
    assert pick_sampler("auto", parse_objectives("val_acc,latency_ms"), shufflenet) == "gp"
    assert pick_sampler("tpe", parse_objectives("val_acc,macs"), shufflenet) == "tpe"  # asked for
    # a resumed search goes on with the sampler it started with, unless another is asked for
    assert pick_sampler("auto", parse_objectives("val_acc,macs"), shufflenet, started_with="gp") == "gp"
    assert pick_sampler("nsga2", parse_objectives("val_acc,macs"), shufflenet, started_with="gp") == "nsga2"
    floats = tmp_path / "floats.yaml"
    floats.write_text("name: floats\nbase: mobilenet_v1\nchoices:\n"
                      "  width:\n    range: {low: 0.25, high: 1.0}\n    set: width\n")
    assert pick_sampler("auto", parse_objectives("val_acc,macs"), load_space(str(floats))) == "gp"
