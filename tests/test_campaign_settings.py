"""One settings class for both campaigns (issue 29): one flag table behind `nas search` and
`nas ablate`, the `key=value` words parsed once into typed values, one state format, and the
folders written before it (search.json; an ablation's `units`) read back."""

from __future__ import annotations

import json

import pytest

from nas.ablate.plan import AblatePlan
from nas.campaign.settings import FLAGS, CampaignSettings, from_args, make_settings
from nas.campaign.state import FORMAT, open_state, stored_state
from nas.cli import parse
from nas.errors import NasError
from nas.search.plan import SearchPlan

OLD_SEARCH = {  # search.json as nas wrote it before issue 29
    "parent_run_id": "abc123",
    "settings": {"space": "shufflenet", "trials": 6, "name": "s", "resume": False, "objectives": "val_acc,macs",
                 "sampler": "ehvi", "seed": 2, "budget": "smoke", "max_macs": 2e7, "max_params": None,
                 "max_latency_ms": None, "latency_runtime": "onnxruntime", "latency_threads": 1,
                 "address": None, "cpus_per_trial": 2.0, "gpus_per_trial": None, "accelerator": "auto",
                 "per_trial": None, "concurrency": 1, "asha": False, "scheduler": "auto", "retrain_top": 0,
                 "output_dir": "searches", "overrides": ["data.name=synthetic", "train.lr=0.05"],
                 "progress": False, "references": True},
    "closed": {"3": {"status": "KILLED", "error": ""}},
}
OLD_ABLATION = {  # an ablation's state.json before issue 29
    "settings": {"experiment": "dsc_cnn_act_conv", "seeds": 1, "budget": "smoke", "name": "a", "resume": False,
                 "address": None, "cpus_per_cell": 1.0, "gpus_per_cell": None, "accelerator": "auto",
                 "per_cell": 0.5, "concurrency": None, "test_images": None, "output_dir": "ablations",
                 "overrides": ["data.name=synthetic"], "progress": True, "retry_failed": False,
                 "experiment_name": "dsc_cnn_act_conv", "experiment_path": "experiments/dsc_cnn_act_conv.yaml"},
    "parent_run_id": "p1", "data": "synthetic",
    "units": {"conv=ds act=relu@0": {"status": "COMPLETED", "run_id": "r1"}},
}


def test_one_flag_table_sets_up_both_commands_with_their_own_flag_names():
    search = parse(["search", "--space", "shufflenet", "--cpus-per-trial", "2", "--per-trial", "0.5",
                    "--concurrency", "3", "--no-progress", "train.lr=0.05", "max_macs=20e6"])
    got = from_args(search, SearchPlan, search.words)
    assert (got.cpus_per_point, got.per_point, got.concurrency, got.progress) == (2.0, 0.5, 3, False)
    assert got.plan.max_macs == 2e7 and got.run.values == {"train.lr": 0.05}
    ablate = parse(["ablate", "dsc_cnn_act_conv", "--cpus-per-cell", "3", "--gpus-per-cell", "0.5", "--seeds", "2"])
    got = from_args(ablate, AblatePlan, [], experiment="dsc_cnn_act_conv")
    assert (got.cpus_per_point, got.gpus_per_point, got.plan.seeds) == (3.0, 0.5, 2)
    assert got.output_dir == "ablations" and got.unit == "cell"
    for field in FLAGS:  # every common field is an option of both commands
        assert hasattr(search, field) and hasattr(ablate, field)


def test_words_are_parsed_once_into_typed_values_and_checked_at_the_door():
    settings = make_settings(SearchPlan, ["max_params=1e6", "train.epochs=3", "data.root=/my data"],
                             space="shufflenet")
    assert settings.plan.max_params == 1e6 and settings.run.values == {"train.epochs": 3, "data.root": "/my data"}
    with pytest.raises(NasError, match="lrr"):
        make_settings(SearchPlan, ["train.lrr=0.1"], space="shufflenet")
    with pytest.raises(NasError, match=r"^max_macs='big' must be a number"):
        make_settings(SearchPlan, ["max_macs=big"], space="shufflenet")


def test_the_printed_command_gives_the_same_settings_back():
    settings = make_settings(SearchPlan, ["max_macs=20e6", "data.root=/my data", "train.lr=0.05"],
                             space="shufflenet", trials=7, name="my search", asha=False, seed=3,
                             cpus_per_point=2.0, output_dir="elsewhere", progress=False)
    args = parse(["search", *settings.command()])
    assert from_args(args, SearchPlan, args.words) == settings


def test_stored_settings_read_back_equal():
    settings = make_settings(AblatePlan, ["data.name=synthetic", "model.stages.*.kernel=5"],
                             experiment="dsc_cnn_act_conv", seeds=2, per_point=0.5)
    stored = json.loads(json.dumps(settings.stored()))
    assert CampaignSettings.from_stored(stored, AblatePlan) == settings


def test_a_search_folder_from_before_resumes_in_the_one_format(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "search.json").write_text(json.dumps(OLD_SEARCH))
    with pytest.raises(NasError, match="add --resume"):
        open_state(folder, what="search", resume=False)
    stored = stored_state(folder, what="search", resume=True)
    settings = CampaignSettings.from_stored(stored["settings"], SearchPlan)
    assert (settings.cpus_per_point, settings.concurrency, settings.plan.max_macs) == (2.0, 1, 2e7)
    assert settings.run.values == {"data.name": "synthetic", "train.lr": 0.05}
    assert (settings.plan.trials, settings.plan.sampler, settings.plan.asha) == (6, "ehvi", False)
    state = open_state(folder, what="search", resume=True)
    assert state.closed == {"3": {"status": "KILLED", "error": ""}} and state.data["parent_run_id"] == "abc123"
    state.save()
    assert not (folder / "search.json").exists()
    saved = json.loads((folder / "state.json").read_text())
    assert (saved["format"], saved["kind"], saved["closed"]) == (FORMAT, "search", OLD_SEARCH["closed"])


def test_an_ablation_state_from_before_reads_its_units_as_points(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps(OLD_ABLATION))
    state = open_state(tmp_path, what="ablation", resume=True)
    assert state.points == OLD_ABLATION["units"]
    assert state.data["experiment"] == {"name": "dsc_cnn_act_conv", "path": "experiments/dsc_cnn_act_conv.yaml"}
    settings = CampaignSettings.from_stored(state.data["settings"], AblatePlan)
    assert (settings.per_point, settings.plan.budget, settings.plan.experiment) == (0.5, "smoke", "dsc_cnn_act_conv")


def test_a_state_of_the_other_kind_or_a_newer_format_is_refused_in_one_line(tmp_path):
    (tmp_path / "search.json").write_text(json.dumps(OLD_SEARCH))
    with pytest.raises(NasError, match="was written by nas search, not nas ablate; resume it with nas search$"):
        open_state(tmp_path, what="ablation", resume=True)
    (tmp_path / "state.json").write_text(json.dumps({"format": FORMAT + 1, "kind": "search"}))
    with pytest.raises(NasError, match=f"has state format {FORMAT + 1}; this nas reads format {FORMAT}"):
        stored_state(tmp_path, what="search", resume=True)


@pytest.mark.parametrize("argv, says", [
    (["search", "--space", "shufflenet", "--cpus-per-trial", "0"], "--cpus-per-trial must be > 0"),
    (["ablate", "dsc_cnn_act_conv", "--cpus-per-cell", "0"], "--cpus-per-cell must be > 0"),
    (["search", "--space", "shufflenet", "--concurrency", "0"], "--concurrency 0 must be >= 1"),
    (["ablate", "dsc_cnn_act_conv", "--resume"], "--resume needs --name NAME (the ablation to continue"),
    (["search", "--space", "shufflenet", "--resume"], "--resume needs --name NAME (the search to continue"),
])
def test_the_common_rules_say_the_same_for_both_commands(argv, says):
    args = parse(argv)
    plan = SearchPlan if argv[0] == "search" else AblatePlan
    extra = {} if plan is SearchPlan else {"experiment": argv[1]}
    settings = from_args(args, plan, [w for w in args.words if "=" in w], **extra)
    with pytest.raises(NasError) as err:
        settings.check()
    assert str(err.value).startswith(says) and "\n" not in str(err.value)
