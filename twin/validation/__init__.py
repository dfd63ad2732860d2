"""The twin against real runs: read a run directory, model the small deployment, fit, compare."""
