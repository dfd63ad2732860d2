"""LL-HLS origin: ``store`` (what is held), ``playlists`` (what is said), ``blocking`` (when to
answer), and ``app`` (the aiohttp shell: ``setup_origin(app, store)``)."""
