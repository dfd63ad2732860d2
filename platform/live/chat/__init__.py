"""WebSocket chat: rooms, moderation, rate limits, and the room log shared across nodes."""
