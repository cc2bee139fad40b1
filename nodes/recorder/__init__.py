"""MCAP recording: the recorder node and the reader used by replay and evaluation."""
