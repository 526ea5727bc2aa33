"""Bytes to rows: validation, pricing and the registry of input kinds. No Kafka, no state."""
