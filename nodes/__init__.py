"""Node runtime, launcher, and one subpackage per node (logic + the shell that binds it to the bus)."""
