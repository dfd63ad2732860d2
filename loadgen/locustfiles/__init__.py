"""Locust users that load the platform like real viewers (LL-HLS players) and chatters."""
