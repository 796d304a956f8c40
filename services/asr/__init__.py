"""Speech recognition: streaming Vosk, in-process or as a vosk-server-compatible service."""

from services.common.native import configure_openblas

# Before any module here loads libvosk, whose OpenBLAS reads this once (see native.py).
configure_openblas()
