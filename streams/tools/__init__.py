"""Replay, the simulator, the producer and the embedded broker: what runs beside or instead of a worker."""
