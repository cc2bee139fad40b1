"""The sim nodes: highway-env (nodes.sim.node) and CARLA (nodes.sim.carla_node) as drivestack nodes, over the
worlds in sim/."""
