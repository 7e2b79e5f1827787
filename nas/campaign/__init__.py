"""What search and ablate share: a campaign is a set of points (sampled by Optuna, or a grid of
cells x seeds), each trained as a `nas.job.Job`, recorded the same way and resumed the same way.

settings (one settings class and its flag table; the `key=value` words parsed once), budget
(named fidelities), state (the one state.json format), resume (what a resumed one keeps),
recorder (the MLflow parent and one child per point, driver only), progress (bar, counts,
summary line), estimate (time from a measured training rate). Ray's worker plan is `nas.workers`.
"""
