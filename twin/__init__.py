"""The livetwin digital twin: a SimPy model of the whole platform at 100M-viewer scale.

Layers (each passes plain data to the next): `scenario` (validated YAML) and `calibration`
(parameters with provenance) -> `model.Twin` (fluid audience, CDN tiers, SimPy pools,
faults, tracer viewers) -> `summary` (SLO verdicts) -> `run` (files) -> `reports` (HTML).
See docs/twin.md for where aggregation is exact and where it approximates.
"""
