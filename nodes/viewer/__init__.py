"""Watching the stack drive: the one drawing (draw.py) used by the live viewer window (node.py) and the
episode video (video.py), the launcher's console (console.py: an observer of the topics that prints each
episode's end, keeps the status line of status.py and prints the summary table of summary.py), and a Foxglove live
view."""
