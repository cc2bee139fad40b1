"""Scripted closed-loop scenarios on the real highway-env: HighwaySim -> DecisionLogic -> LaneSpeedController.

The world starts empty (vehicles_count=0); each scenario places the ego and the vehicles it needs.
Perception is ground truth (the vehicles in the camera's view), the planner a script of meta-actions
chosen once per second (replanned on every 15th tick, republished in between).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from highway_env.vehicle.controller import ControlledVehicle
from highway_env.vehicle.kinematics import Vehicle

from msgs import Action, DrivingTarget, EgoState, Mode, ObjectArray, Plan
from nodes.control.pid import LaneSpeedController
from nodes.decision.logic import DecisionLogic, DecisionParams
from sim.highway import HighwaySim, SimParams

REPLAN_TICKS = 15  # the planner's 1 Hz at the 15 Hz control rate
EGO_X0 = 200.0  # [m] where the ego starts along the road


@dataclass
class Record:
    tick: int
    ego: EgoState
    target: DrivingTarget


@dataclass
class Run:
    records: list[Record] = field(default_factory=list)

    @property
    def crashed(self) -> bool:
        return any(r.ego.crashed for r in self.records)

    @property
    def modes(self) -> list[Mode]:
        """The mode sequence with repeats collapsed."""
        seq: list[Mode] = []
        for r in self.records:
            m = Mode(r.target.mode)
            if not seq or seq[-1] != m:
                seq.append(m)
        return seq

    def reasons(self, mode: Mode) -> list[str]:
        return [r.target.reason for r in self.records if r.target.mode == mode]


class Scenario:
    def __init__(self, ego_lane: int = 1, ego_speed: float = 25.0, lanes: int = 4,
                 params: DecisionParams | None = None, seed: int = 0) -> None:
        self.sim = HighwaySim(SimParams(vehicles_count=0, lanes_count=lanes, duration=60.0, render=False))
        self.sim.reset(seed=seed, episode=0)
        self.road = self.sim.unwrapped.road
        ego = self.sim.unwrapped.vehicle
        ego.position = np.array([EGO_X0, 4.0 * ego_lane])
        ego.heading, ego.speed = 0.0, ego_speed
        ego.on_state_update()
        self.logic = DecisionLogic(params or DecisionParams())
        self.control = LaneSpeedController()

    def add(self, dx: float, lane: float, speed: float, cut_into: int | None = None) -> Vehicle:
        """A vehicle `dx` m ahead of the ego's start at the centre of `lane`, holding `speed`; with
        `cut_into`, a highway-env controlled vehicle that steers into that lane right away."""
        position = np.array([EGO_X0 + dx, 4.0 * lane])
        if cut_into is None:
            vehicle = Vehicle(self.road, position, 0.0, speed)
        else:
            vehicle = ControlledVehicle(self.road, position, 0.0, speed, target_speed=speed)
            vehicle.target_lane_index = (*vehicle.lane_index[:2], cut_into)
        self.road.vehicles.append(vehicle)
        return vehicle

    def run(self, ticks: int, actions: dict[int, Action] | None = None,
            plan_gap: range = range(0), objects_gap: range = range(0)) -> Run:
        """Drive `ticks` ticks. `actions`: replan index (second) -> meta-action (IDLE otherwise);
        no plan message arrives on the ticks in `plan_gap`, no objects on those in `objects_gap`."""
        actions = actions or {}
        run = Run()
        last_plan = last_objects = None
        held = Action.IDLE
        for tick in range(ticks):
            header = self.sim.header()
            ego = self.sim.ego_state(header)
            replanned = tick % REPLAN_TICKS == 0
            if replanned:
                held = actions.get(tick // REPLAN_TICKS, Action.IDLE)
            plan = objects = None
            if tick not in plan_gap:
                plan = Plan(header=header, action=int(held), replanned=replanned,
                            plan_tick=tick - tick % REPLAN_TICKS)
                last_plan = tick
            if tick not in objects_gap:
                gt = self.sim.objects_gt(header)
                objects = ObjectArray(header=header, objects=[o for o in gt.objects if o.in_view])
                last_objects = tick
            target = self.logic.step(tick, ego, objects, plan, last_objects, last_plan)
            run.records.append(Record(tick, ego, target))
            if ego.crashed:
                break
            self.sim.step(self.control.step(ego, target))
        return run
