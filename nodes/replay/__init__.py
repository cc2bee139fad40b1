"""Replay of MCAP recordings onto the bus."""
