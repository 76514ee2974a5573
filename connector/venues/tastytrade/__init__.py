"""tastytrade Account Streamer: pure protocol, notification mapping and REST baselines."""
