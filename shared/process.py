"""What a service process sets for itself before it serves (``csm serve``)."""

from __future__ import annotations

import gc


def tune_gc(young_threshold: int) -> None:
    """Let ``young_threshold`` objects be allocated before the cyclic collector walks the young
    generation (0 keeps Python's own 700); the older generations keep their ratios to it.

    A consumer's batch makes tens of thousands of short-lived objects (envelopes, rows, events), and
    reference counting frees nearly all of them; with Python's threshold the collector ran about 40
    times per thousand events, every tenth run over the older generation too, for some 15 µs of
    each event's CPU (``bench segmentation_events``; see the README). Cycles are still collected,
    later; the process's memory did not grow in that benchmark.
    """
    if young_threshold > 0:
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(young_threshold, older, oldest)
