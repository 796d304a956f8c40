"""A gateway process of its own for the Redis concurrency test: its operators claim and accept
calls from the shared queue until none is left, then print what they took (JSON)."""

from __future__ import annotations

import asyncio
import json
import sys

from services.handoff.models import OperatorLogin, OperatorState
from services.handoff.redis_store import RedisStore


async def main(url: str, prefix: str, name: str, operators: int) -> None:
    store = RedisStore.from_url(url, prefix=prefix)
    taken: list[str] = []

    async def operator(op_id: str) -> None:
        await store.login(OperatorLogin(id=op_id, queues=["operators"]))
        await store.set_state(op_id, OperatorState.AVAILABLE)
        while True:
            offer = await store.claim_next(op_id, 30)
            if offer is None:
                if not await store.waiting():
                    return
                await asyncio.sleep(0.001)
                continue
            await store.accept(offer.id)
            taken.append(offer.call_id)
            await store.transfer(offer.call_id, None)  # done with it: back to the bot
            await store.set_state(op_id, OperatorState.AVAILABLE)

    await asyncio.gather(*(operator(f"{name}-op{i}") for i in range(operators)))
    await store.close()
    print(json.dumps(taken))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
