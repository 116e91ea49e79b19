"""Live statistics: :mod:`.figures` (service level, ASA, AHT, abandon rate over a window; indexed,
window-bounded queries) and :mod:`.cache` (those figures refreshed off the event loop, so ``/status``
and a Prometheus scrape never touch SQLite)."""
