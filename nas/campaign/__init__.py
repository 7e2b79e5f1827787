"""What search and ablate share: a campaign is a set of points (sampled by Optuna, or a grid of
cells x seeds), each trained as a `nas.job.Job`, recorded the same way and resumed the same way.

budget (named fidelities), state (the campaign folder: atomic state, resume), recorder (the
MLflow parent and one child per point, driver only), progress (bar, counts, summary line),
estimate (time from a measured training rate). Ray's worker plan is `nas.workers`.
"""
