"""Every threshold of the decision layer, typed, with its unit and what it does."""

from __future__ import annotations

import msgspec

from msgs.registry import CONTROL_RATE_HZ


class DecisionParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Parameters of `DecisionLogic`. Distances are bumper to bumper unless a field says otherwise."""

    # --- meta-action -> target -------------------------------------------------------------------------
    speed_setpoints: list[float] = msgspec.field(default_factory=lambda: [20.0, 25.0, 30.0])
    """[m/s] target speeds that FASTER / SLOWER step through, strictly ascending."""
    initial_speed: float | None = None
    """[m/s] set-point used until the first FASTER/SLOWER; None: the set-point nearest the ego's speed."""
    tick_period: float = 1.0 / CONTROL_RATE_HZ
    """[s] control tick; turns the watchdog's tick counts and the minimal-risk deceleration into time."""
    overrides: bool = True
    """False: only map meta-actions to targets (no following, gap, headway, TTC or emergency checks)."""
    interventions: bool = True
    """False (with `overrides` on): keep following (the speed cap behind a slower lead) but never refuse or
    abort a lane change and never brake in emergency: the planner drives on its own, with adaptive cruise."""

    # --- which vehicles are in a lane / in the ego's path ----------------------------------------------
    lateral_margin: float = 0.3
    """[m] lateral clearance added to the half widths when deciding that a vehicle is in a corridor."""
    cut_in_horizon: float = 1.0
    """[s] a vehicle whose lateral position this far ahead in time enters a corridor counts as in it."""
    cut_in_min_lateral_speed: float = 0.5
    """[m/s] lateral speed below which that prediction is ignored (tracker noise)."""

    # --- lane-change gap acceptance (safe-braking check on the new leader and follower) ---------------
    lc_min_front_gap: float = 5.0
    """[m] minimum gap to the new leader."""
    lc_front_time_gap: float = 0.5
    """[s] time gap at the ego's speed added to the front gap."""
    lc_min_rear_gap: float = 5.0
    """[m] minimum gap to the new follower."""
    lc_rear_time_gap: float = 0.3
    """[s] time gap at the follower's speed added to the rear gap."""
    lc_safe_decel: float = 3.0
    """[m/s^2] the most braking a lane change may impose on the new follower or on the ego (MOBIL b_safe);
    the closing-speed term of a gap is dv^2 / (2 * this)."""
    lc_abort: bool = True
    """Re-check the gap during a lane change and go back while the ego is still in its old lane."""
    lc_abort_gap_ratio: float = 0.5
    """[-] an ongoing lane change is aborted when a gap falls below this fraction of the required one."""
    lc_retry: bool = True
    """Keep re-checking a refused lane change until the next replan and make it once the gap opens."""

    # --- longitudinal: speed cap to the lead vehicle (IDM-like) ----------------------------------------
    min_gap: float = 3.0
    """[m] gap to keep to the lead vehicle at standstill (IDM s0)."""
    time_headway: float = 1.0
    """[s] time headway to keep to the lead vehicle (IDM T)."""
    gap_time_constant: float = 2.0
    """[s] how quickly the speed cap closes or opens a headway error."""
    headway_open_speed: float = 3.0
    """[m/s] to open a too-short headway the cap goes at most this far below the lead's speed (the TTC,
    braking-distance and emergency limits handle a closing lead)."""
    comfort_decel: float = 3.0
    """[m/s^2] the cap keeps the ego able to stop behind a lead braking this hard, braking this hard."""
    min_ttc: float = 3.0
    """[s] the cap keeps the time-to-collision to the lead vehicle at least this long."""
    speed_cap_tolerance: float = 0.5
    """[m/s] a cap less than this below the set-point is applied but not reported as FOLLOWING."""

    # --- emergency braking -----------------------------------------------------------------------------
    emergency_ttc: float = 1.5
    """[s] time-to-collision below which the ego brakes hard (EMERGENCY)."""
    emergency_ttc_exit: float = 2.0
    """[s] time-to-collision above which EMERGENCY ends (hysteresis)."""
    emergency_required_decel: float = 4.0
    """[m/s^2] EMERGENCY too when avoiding the lead needs braking harder than this."""
    emergency_exit_decel: float = 3.0
    """[m/s^2] EMERGENCY ends only once the required braking is below this too (hysteresis)."""
    emergency_stop_gap: float = 1.0
    """[m] gap the required braking aims to stop the closing at."""
    emergency_min_decel: float = 3.0
    """[m/s^2] least deceleration asked of control in EMERGENCY (DrivingTarget.max_decel)."""
    emergency_max_decel: float = 5.0
    """[m/s^2] most deceleration asked of control in EMERGENCY (highway-env's actuator limit)."""
    emergency_decel_margin: float = 1.5
    """[-] the deceleration asked is the required one times this, within [min, max] above."""

    # --- watchdog and minimal-risk manoeuvre -----------------------------------------------------------
    watchdog: bool = True
    """Switch to MINIMAL_RISK when perception or the plan is stale (independent of `overrides`)."""
    objects_stale_ticks: int = 3
    """[ticks] perception older than this (or never received) is stale."""
    plan_stale_ticks: int = 3
    """[ticks] a plan older than this (or never received) is stale."""
    mrm_decel: float = 1.5
    """[m/s^2] rate at which the minimal-risk target speed decreases."""
    mrm_min_speed: float = 0.0
    """[m/s] the minimal-risk target speed does not go below this."""

    def __post_init__(self) -> None:
        self.check()  # a value object: refused when made (directly, or from a launch file's params)

    def check(self) -> DecisionParams:
        """ValueError naming the first bad field; returns self so it chains."""
        sp = self.speed_setpoints
        if not sp:
            raise ValueError("DecisionParams.speed_setpoints: give at least one set-point [m/s]")
        if any(b <= a for a, b in zip(sp, sp[1:], strict=False)) or sp[0] < 0:
            raise ValueError(f"DecisionParams.speed_setpoints must be >= 0 and strictly ascending, got {sp}")
        positive = (
            "tick_period", "time_headway", "gap_time_constant", "comfort_decel", "min_ttc", "emergency_ttc",
            "emergency_min_decel", "emergency_max_decel", "mrm_decel", "lc_safe_decel",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"DecisionParams.{name} must be > 0, got {getattr(self, name)}")
        non_negative = (
            "lateral_margin", "cut_in_horizon", "cut_in_min_lateral_speed", "lc_min_front_gap",
            "lc_front_time_gap", "headway_open_speed", "lc_min_rear_gap", "lc_rear_time_gap", "min_gap",
            "speed_cap_tolerance",
            "emergency_stop_gap", "mrm_min_speed", "objects_stale_ticks", "plan_stale_ticks",
            "emergency_required_decel", "emergency_exit_decel",
        )
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ValueError(f"DecisionParams.{name} must be >= 0, got {getattr(self, name)}")
        if self.emergency_ttc_exit < self.emergency_ttc:
            raise ValueError(
                f"DecisionParams.emergency_ttc_exit ({self.emergency_ttc_exit} s) must be >= emergency_ttc "
                f"({self.emergency_ttc} s)"
            )
        if self.emergency_max_decel < self.emergency_min_decel:
            raise ValueError("DecisionParams.emergency_max_decel must be >= emergency_min_decel")
        if self.emergency_exit_decel > self.emergency_required_decel:
            raise ValueError("DecisionParams.emergency_exit_decel must be <= emergency_required_decel")
        if not 0.0 < self.lc_abort_gap_ratio <= 1.0:
            raise ValueError(
                f"DecisionParams.lc_abort_gap_ratio must be in (0, 1], got {self.lc_abort_gap_ratio}"
            )
        return self
