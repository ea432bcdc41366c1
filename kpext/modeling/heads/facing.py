"""The facing branch a kpext head may carry: which way each person faces (front, back, profile
to the right or to the left; :mod:`kpext.data.facing`), from the pooled RoI features.

Trained with ``MODEL.KPEXT.FACING.LOSS_WEIGHT`` on annotations that carry a ``"yaw"``; at
inference its probabilities tell the person-level left/right decoder (``TEST.KPEXT.LEFT_RIGHT
person``) which orientation a person has: seen from the front the left points are on the
image's right, from behind on its left.
"""

from __future__ import annotations

import torch
from torch import nn

from ...data.facing import FACING_CLASSES


class FacingBranch(nn.Module):
    """R x C x S x S pooled RoI features -> R x 4 facing logits (:data:`FACING_CLASSES`
    order): a 3x3 stride-2 conv with ReLU, global average pooling, a linear layer."""

    def __init__(self, in_channels: int, hidden: int = 64):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, hidden, 3, stride=2, padding=1)
        self.classifier = nn.Linear(hidden, len(FACING_CLASSES))
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.conv.bias)
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def orientation_costs(probabilities: torch.Tensor, weight: float) -> torch.Tensor:
    """R x 2 costs, for the left/right decoder, of orientation +1 (left points at larger x: a
    front view) and -1 (a back view): ``weight`` times the probability of the other view.
    Profile probability costs neither."""
    front, back = probabilities[:, 0], probabilities[:, 1]
    return weight * torch.stack([back, front], dim=1)
