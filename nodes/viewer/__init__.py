"""Watching the stack drive: the one drawing (draw.py) used by the live viewer window (node.py) and the
episode video (video.py), the launcher's status line (status.py), and a Foxglove live view."""
