"""The facing branch a kpext head may carry: which way each person faces (front, back, profile
to the right or to the left; :mod:`kpext.data.facing`, the classes of a yaw), from the pooled
RoI features.

A network with its own loss, trained with ``MODEL.KPEXT.FACING.LOSS_WEIGHT`` on annotations
that carry a ``"yaw"``, so it is a part of the head (its parameters are the head's
``facing.*``). At inference its probabilities go to the head's
:class:`~kpext.modeling.decoding.TestTimeDecoder` as an orientation prior for person-level
left/right decoding (``TEST.KPEXT.LEFT_RIGHT person``): seen from the front the left points are
on the image's right, from behind on its left.
"""

from __future__ import annotations

from typing import Dict, List, Optional

import torch
from torch import nn

from detectron2.structures import Instances

from ...data.facing import FACING_CLASSES
from ..losses import facing_loss


class FacingBranch(nn.Module):
    """R x C x S x S pooled RoI features -> R x 4 facing logits (:data:`FACING_CLASSES`
    order): a 3x3 stride-2 conv with ReLU, global average pooling, a linear layer."""

    def __init__(self, in_channels: int, hidden: int = 64, *, loss_weight: float = 1.0):
        """
        Args:
            in_channels: channels of the pooled features.
            hidden: channels of the conv.
            loss_weight: weight of the cross-entropy (``loss_keypoint_facing``).
        """
        super().__init__()
        self.loss_weight = loss_weight
        self.conv = nn.Conv2d(in_channels, hidden, 3, stride=2, padding=1)
        self.classifier = nn.Linear(hidden, len(FACING_CLASSES))
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.conv.bias)
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)

    @classmethod
    def from_config(cls, cfg, in_channels: int) -> Optional["FacingBranch"]:
        """The branch ``MODEL.KPEXT.FACING.LOSS_WEIGHT`` asks for, on ``in_channels`` pooled
        channels; None when the weight is 0 (no branch)."""
        weight = cfg.MODEL.KPEXT.FACING.LOSS_WEIGHT
        if weight <= 0:
            return None
        if in_channels <= 0:
            raise ValueError("the facing branch needs the pooled features' channels")
        return cls(in_channels, loss_weight=weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.relu(self.conv(x)).mean(dim=(2, 3)))

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """R x 4 facing probabilities (softmax of the logits) of R x C x S x S features."""
        return self(x).softmax(dim=1)

    def losses(self, x: torch.Tensor, instances: List[Instances]) -> Dict[str, torch.Tensor]:
        """``loss_keypoint_facing``: the cross-entropy of the R training RoIs' logits against
        their ``gt_facing`` (-1, no target, for images whose annotations have no yaw), times
        ``loss_weight``."""
        targets = [
            i.gt_facing if i.has("gt_facing") else torch.full((len(i),), -1, device=x.device)
            for i in instances
        ]
        logits = self(x)
        target = torch.cat(targets).to(x.device) if targets else logits.new_zeros(0).long()
        return {"loss_keypoint_facing": facing_loss(logits, target) * self.loss_weight}
