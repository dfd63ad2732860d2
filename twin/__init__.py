"""The livetwin digital twin: a SimPy model of the whole platform at 100M-viewer scale.

Layers (each passes plain data to the next): `scenario` (the schema and its YAML reader) and
`calibration` (parameters with provenance) -> `model.twin.Twin` (fluid audience, CDN tiers,
SimPy pools, faults, tracer viewers, one module per component) -> `summary` (SLO verdicts)
-> `run` (files). `validation` reads real run directories (`loadgen run`), models the small
deployment, fits the calibration to runs and compares. Only `twin.cli` renders reports.
See docs/twin.md for where aggregation is exact and where it approximates.
"""
