"""Repeat callers (first-call resolution): a caller whose number called the same queue within the
queue's ``repeat_window_s`` is flagged at queue entry (call record, screen pop, statistics)."""
