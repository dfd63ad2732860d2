"""`loadgen run`: perform a scenario's `real:` section on this machine and write a real run directory.

`launch` starts the platform, the publishers, Locust and the probe (and waits for their ports),
`sample` reads CPU per role and the platform's /metrics once a second, `reduce` turns it all
into measured.json, timeseries.csv and run.json, and `run` strings them together.
"""
