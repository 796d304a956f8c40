"""Speech synthesis: Silero (default when installed) and eSpeak NG (always available)."""
