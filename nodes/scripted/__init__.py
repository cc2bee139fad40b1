"""A scripted stand-in for the decision node: driving targets from a timed list of set-points."""
