"""Prometheus metrics of the recognizer (one set per process, in the default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0)

STREAMS = Gauge("voicebot_asr_streams", "Open recognition streams")
LAG = Histogram(
    "voicebot_asr_stream_lag_seconds",
    "Per stream chunk: audio handed to the recognizer until its reply (queue wait + decoding)",
    ["kind"],
    buckets=LAG_BUCKETS,
)
QUEUE_WAIT = Histogram(
    "voicebot_asr_pool_queue_wait_seconds",
    "Time a chunk waited for a free worker",
    buckets=LAG_BUCKETS,
)
SATURATION = Gauge(
    "voicebot_asr_pool_saturation",
    "Chunks in the pool (running + waiting) per worker; above 1 means chunks queue",
)
WORKERS = Gauge("voicebot_asr_pool_workers", "Decoder threads (sized to the CPU cores)")
REJECTED = Counter("voicebot_asr_rejected_total", "Streams or chunks shed under load", ["what"])
AUDIO_IN = Counter("voicebot_asr_audio_seconds_total", "Audio received by streams")
AUDIO_DECODED = Counter(
    "voicebot_asr_audio_decoded_seconds_total", "Audio the VAD gate let through to the recognizer"
)
