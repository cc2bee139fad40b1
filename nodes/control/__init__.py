"""Lane and speed control: the pure PID logic (`pid`) and its node shell (`node`)."""
