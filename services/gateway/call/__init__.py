"""The call engine: one caller's conversation as a small state machine, free of any transport."""
