"""The queues' figures on /metrics: a prometheus collector over the service's last snapshot.

Figures need the store (async); a scrape is sync, so the service refreshes a snapshot on its
tick (`HandoffService.refresh_figures`) and the collector reads that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.handoff.models import QueueFigures

# figure → (metric name, help); None figures (no history yet) are left out of the scrape
GAUGES: dict[str, tuple[str, str]] = {
    "waiting_now": ("voicebot_queue_waiting", "callers in line now (waiting or offered)"),
    "longest_wait_s": ("voicebot_queue_longest_wait_seconds", "the longest current wait"),
    "asa_s": ("voicebot_queue_asa_seconds", "average speed of answer over the window"),
    "abandonment_rate": ("voicebot_queue_abandonment_ratio", "abandoned / (answered + abandoned)"),
    "service_level": ("voicebot_queue_service_level_ratio", "answered within the SL threshold"),
    "aht_s": ("voicebot_queue_aht_seconds", "average handling time of finished talks"),
    "callbacks_due": ("voicebot_queue_callbacks_due", "open callback tasks"),
    "callbacks_done": ("voicebot_queue_callbacks_done", "callbacks completed"),
    "operators_on_shift": ("voicebot_queue_operators_on_shift", "operators logged in, not away"),
}


class QueueCollector(Collector):
    def __init__(self, snapshot: Callable[[], Mapping[str, QueueFigures]]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        figures = self._snapshot()
        for field, (name, doc) in GAUGES.items():
            family = GaugeMetricFamily(name, doc, labels=["queue"])
            for queue, fig in sorted(figures.items()):
                value = getattr(fig, field)
                if value is not None:
                    family.add_metric([queue], float(value))
            yield family
