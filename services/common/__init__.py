"""Code every service shares: audio helpers, settings, logging."""
