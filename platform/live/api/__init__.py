"""The platform API: accounts, sessions, channels, stream keys, live streams (docs/api.md)."""
