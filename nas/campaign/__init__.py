"""What search and ablate share: a campaign's points (sampled, or a grid of cells x seeds) are each
a `nas.job.Job`, set up, recorded, resumed and estimated the same way (modules: README, Layout)."""
