"""Simulator backends, scenarios, the camera model and closed-loop metrics."""
