"""The shipped ablation experiments (YAML), installed as package data `nas.experiments`; see nas/ablate/experiment.py."""
