"""Pacing drift of the gateway's outgoing audio over a long AudioSocket call (default 10 min).

One real call on a real `voicebot serve`: the caller sends silence paced by its own clock, as
Asterisk does, and timestamps every frame the gateway sends back. Drift is how far the last
frame is from where an ideal 20 ms clock would put it, (t_last - t_first) - (n - 1) x 20 ms;
the gateway's own pacer statistics come from the call record. Run:

    .venv/bin/python -m bench.call_pacing [--seconds 600]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
import uuid

import httpx

from bench.call_gateway import percentile, start_gateway, write_results
from bench.local import machine_note
from services.gateway.audiosocket.protocol import FrameDecoder, Kind, audio_frame, uuid_frame

SILENCE = b"\0" * 320


async def hold_call(address: str, seconds: float) -> tuple[str, list[float]]:
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    call_id = str(uuid.uuid4())
    writer.write(uuid_frame(call_id))
    arrivals: list[float] = []

    async def read() -> None:
        decoder = FrameDecoder()
        while data := await reader.read(65536):
            for frame in decoder.feed(data):
                if frame.kind is Kind.AUDIO:
                    arrivals.append(time.monotonic())

    reading = asyncio.create_task(read())
    start, n = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        writer.write(audio_frame(Kind.AUDIO, SILENCE))
        await writer.drain()
        n += 1
        await asyncio.sleep(max(0.0, start + n * 0.02 - time.monotonic()))
    writer.close()
    await writer.wait_closed()
    reading.cancel()
    return call_id, arrivals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    args = parser.parse_args()
    machine = machine_note()  # before the run: its load average is the machine's, not ours
    gateway = start_gateway(VOICEBOT_CALL_SILENCE_TIMEOUT_S="100000")
    try:
        call_id, arrivals = asyncio.run(hold_call(gateway.audiosocket, args.seconds))
        time.sleep(1)
        record = httpx.get(f"{gateway.http}/v1/calls/{call_id}").json()
    finally:
        gateway.stop()
    n = len(arrivals)
    span = arrivals[-1] - arrivals[0]
    drift_ms = (span - (n - 1) * 0.02) * 1000
    gaps = [(b - a) * 1000 for a, b in itertools.pairwise(arrivals)]
    # Drift along the way: each minute's end against the ideal clock from the first frame.
    per_minute = [((arrivals[i] - arrivals[0]) - i * 0.02) * 1000 for i in range(0, n, 3000)]
    pacing = {k: f"{v:g}" for k, v in record.get("pacing", {}).items()}
    gap_p50, gap_p99 = percentile(gaps, 50), percentile(gaps, 99)
    write_results(
        "call_pacing",
        f"""# Pacing drift of outgoing AudioSocket audio (bench/call_pacing.py)

`.venv/bin/python -m bench.call_pacing --seconds {args.seconds:g}` — one
{args.seconds / 60:.1f}-minute AudioSocket call on a real `voicebot serve`, measured by the
caller (same machine, same monotonic clock). {machine}

| measure | value |
|---|---:|
| frames received | {n} (ideal {int(args.seconds * 50)}) |
| drift at the end: (t_last - t_first) - (n-1) x 20 ms | {drift_ms:+.1f} ms |
| drift at each minute (ms) | {", ".join(f"{d:+.1f}" for d in per_minute)} |
| inter-frame gap p50 / p99 / max | {gap_p50:.1f} / {gap_p99:.1f} / {max(gaps):.1f} ms |
| gateway pacer: frames sent | {pacing.get("frames")} |
| gateway pacer: worst lateness of a frame | {pacing.get("max_lag_ms")} ms |
| gateway pacer: lateness of the last frame | {pacing.get("drift_ms")} ms |
| gateway pacer: schedule restarts after stalls > 200 ms | {pacing.get("resyncs")} |

Frames are due at t0 + n x 20 ms on the monotonic clock, so lateness does not accumulate: a
late frame is followed by on-time ones, and the drift stays at the jitter of the last frame.
""",
    )


if __name__ == "__main__":
    main()
