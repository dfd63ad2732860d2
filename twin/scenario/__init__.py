"""Scenarios: what the twin simulates. `schema` holds the frozen types; `reader` builds them from YAML
through `nodes` (marked node access, so every error names file, line and field)."""
