"""Two toy nodes that close a loop like the real sim and control do: for runtime tests and benchmarks."""
