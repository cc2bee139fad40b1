"""The detector's training worlds are the sim's (sim.highway.make_env) at highway-v0's own defaults, but for the
traffic, the episode length, the camera and the control rate."""

from msgs.registry import CONTROL_RATE_HZ
from nodes.perception import dataset as ds
from sim.view import DEFAULT_VIEW

ALLOWED = {"vehicles_count", "vehicles_density", "duration", "action", "policy_frequency", "simulation_frequency",
           "screen_width", "screen_height", "scaling", "centering_position", "offscreen_rendering"}


def test_the_dataset_world_is_highway_v0_at_its_defaults_but_for_traffic_camera_and_rate():
    env = ds.make_env(vehicles_count=25, density=1.5)
    config, default = env.unwrapped.config, env.unwrapped.default_config()
    assert {k for k in default if config[k] != default[k]} <= ALLOWED
    assert (config["vehicles_count"], config["vehicles_density"]) == (25, 1.5)
    assert config["policy_frequency"] == config["simulation_frequency"] == CONTROL_RATE_HZ
    assert config["action"] == {"type": "ContinuousAction"} and config["offroad_terminal"] is False
    assert {k: config[k] for k in DEFAULT_VIEW.env_config()} == DEFAULT_VIEW.env_config()
    assert ds.env_config(25, 1.5) == {k: config[k] for k in ds.env_config(25, 1.5)}
    env.close()
