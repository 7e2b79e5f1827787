"""`nas search --retrain-top K`: the K best front members trained again from scratch at the full
`nas run` budget (same words as the search, so the same spec overrides), their test accuracy
logged beside the search-time validation accuracy: the number a paper reports. The retrained
weights are kept (`weights/trialNNN.pt`) and exported to ONNX (`export/`, `nas.export.export_trained`)."""

from __future__ import annotations

import pandas as pd

from nas import mlflow_layout as ml
from nas.campaign.recorder import CampaignRecorder
from nas.config import load_run_config
from nas.export import export_trained


def retrain_front(outcome, settings, campaign: CampaignRecorder, experiment: str) -> pd.DataFrame:
    from nas.run import run

    best = outcome.front.sort_values("val_acc", ascending=False).head(settings.plan.retrain_top)
    rows = []
    for _, row in best.iterrows():
        number = int(row["trial"])
        path = outcome.folder / "front" / f"trial{number:03d}.yaml"
        print(f"retraining trial {number} at the full budget: nas run spec={path}")
        cfg = load_run_config([f"spec={path}", f"mlflow.experiment={experiment}",
                               f"mlflow.run_name={outcome.name}-retrain-t{number:03d}"], overrides=settings.run)
        done = run(cfg, parent_run_id=campaign.parent.run_id,
                   tags={ml.KIND: ml.KIND_RETRAIN, ml.TRIAL: str(number),
                         ml.RETRAIN_OF: str(row["mlflow_run_id"])})
        print(export_trained(done.model, done.spec, outcome.folder, f"trial{number:03d}"))
        retrained = {"retrain_val_acc": done.result.val_acc, "retrain_test_acc": done.test_acc,
                     "retrain_epochs": cfg.train.epochs}
        if row["mlflow_run_id"] and campaign.tracking:
            for key, value in retrained.items():
                if value is not None:
                    campaign.parent.client.log_metric(row["mlflow_run_id"], key, float(value))
        rows.append({"trial": number, "macs": row["macs"], "search_val_acc": row["val_acc"], **retrained})
    table = pd.DataFrame(rows)
    table.to_csv(outcome.folder / "retrained.csv", index=False)
    campaign.parent.log_artifact(outcome.folder / "retrained.csv")
    return table
