"""Perception: a CNN vehicle detector on the rendered frame, a multi-object tracker, and the node."""
