"""Closed-loop evaluation: run launch files over seeded episodes (locally or on Ray), turn recordings into
traces, score them (metrics, aggregation, statistics) and report (tables, plots)."""
