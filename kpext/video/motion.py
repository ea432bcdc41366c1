"""Motion model of a tracked person: independent constant-velocity Kalman filters.

A person's pose is tracked as many image coordinates (K keypoints x 2, plus
the 4 box corners), each with its own 1-D constant-velocity Kalman filter
(state: position, velocity). Keeping the coordinates independent is the
usual simplification of SORT and ByteTrack (their filters' covariances are
diagonal per coordinate too); it lets one class filter any array shape at
once with elementwise numpy.

Noise is given as standard deviations in pixels, per element or broadcast:
``process_std`` is the white-noise acceleration (px / frame^2) that lets the
velocity change, ``measurement_std`` the detector's error on a position (px).
Time is counted in frames.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

__all__ = ["ConstantVelocityKalman"]

ArrayLike = np.ndarray


class ConstantVelocityKalman:
    """Elementwise constant-velocity Kalman filters over an array of positions.

    Args:
        position: the first measured positions, any shape S (e.g. K x 2).
        position_std: standard deviation (px) of those first positions, broadcast to S.
        velocity_std: standard deviation (px / frame) of the unknown first velocity.

    :meth:`predict` advances one frame; :meth:`update` folds in a measurement
    for the elements ``mask`` selects (the others keep their prediction: a
    keypoint that was not detected this frame).
    """

    def __init__(self, position: ArrayLike, position_std: ArrayLike, velocity_std: ArrayLike):
        self.position = np.array(position, dtype=np.float64)
        shape = self.position.shape
        self.velocity = np.zeros(shape)
        # covariance [[pp, pv], [pv, vv]] of each element's (position, velocity)
        self.var_pp = np.broadcast_to(np.square(position_std, dtype=np.float64), shape).copy()
        self.cov_pv = np.zeros(shape)
        self.var_vv = np.broadcast_to(np.square(velocity_std, dtype=np.float64), shape).copy()

    @property
    def shape(self) -> Tuple[int, ...]:
        return self.position.shape

    def predict(self, process_std: ArrayLike, velocity_decay: float = 1.0) -> np.ndarray:
        """Advance one frame; returns the predicted positions (shape S).

        ``velocity_decay`` (at most 1) scales the velocity after the step: a
        track that is not being observed should not be carried on at full
        speed indefinitely (people stop and turn; a constant-velocity guess
        that runs on for a second lands far from them).
        """
        q = np.square(process_std, dtype=np.float64)
        self.position = self.position + self.velocity
        # P <- F P F^T + Q, F = [[1, 1], [0, 1]], Q of white-noise acceleration over one frame
        pp = self.var_pp + 2.0 * self.cov_pv + self.var_vv + q / 4.0
        pv = self.cov_pv + self.var_vv + q / 2.0
        vv = self.var_vv + q
        if velocity_decay != 1.0:
            self.velocity = self.velocity * velocity_decay
            pv = pv * velocity_decay
            vv = vv * velocity_decay**2
        self.var_pp, self.cov_pv, self.var_vv = pp, pv, vv
        return self.position

    def update(
        self, measured: ArrayLike, measurement_std: ArrayLike, mask: Optional[ArrayLike] = None
    ) -> np.ndarray:
        """Fold in measured positions (shape S) where ``mask`` (broadcast to S) is true;
        returns the filtered positions."""
        measured = np.asarray(measured, dtype=np.float64)
        if measured.shape != self.shape:
            raise ValueError(f"measurement shape {measured.shape} differs from {self.shape}")
        use = np.ones(self.shape, dtype=bool) if mask is None else np.broadcast_to(mask, self.shape)
        r = np.broadcast_to(np.square(measurement_std, dtype=np.float64), self.shape)
        innovation_var = self.var_pp + r
        gain_p = self.var_pp / innovation_var  # Kalman gain, position row
        gain_v = self.cov_pv / innovation_var  # Kalman gain, velocity row
        innovation = measured - self.position
        new_position = self.position + gain_p * innovation
        new_velocity = self.velocity + gain_v * innovation
        # P <- (I - K H) P
        new_pp = (1.0 - gain_p) * self.var_pp
        new_pv = (1.0 - gain_p) * self.cov_pv
        new_vv = self.var_vv - gain_v * self.cov_pv
        self.position = np.where(use, new_position, self.position)
        self.velocity = np.where(use, new_velocity, self.velocity)
        self.var_pp = np.where(use, new_pp, self.var_pp)
        self.cov_pv = np.where(use, new_pv, self.cov_pv)
        self.var_vv = np.where(use, new_vv, self.var_vv)
        return self.position
