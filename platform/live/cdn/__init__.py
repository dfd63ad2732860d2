"""The CDN tiers: nginx shields and edges in front of the origin (config, launcher, metrics)."""
