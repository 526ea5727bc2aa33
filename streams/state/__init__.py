"""A team's ledger: windows, de-duplication, watermarks, the table layout, and judging.

No Faust here: a table is a mapping. streams/worker runs it; streams/tools/replay.py runs it offline.
"""
