"""Speech recognition: streaming Vosk, in-process or as a vosk-server-compatible service."""
