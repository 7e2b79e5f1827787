"""`nas ablate`: paper ablations as experiment files, run as a grid of Ray tasks and reported as
mean ± std beside the paper. Importing this package stays light (`nas --help` reads `plan`'s flags)."""
