"""Scenarios: what the twin simulates. `schema` holds the frozen types; `reader` builds them from YAML."""
