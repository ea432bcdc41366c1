"""MODEL.KPEXT.KRCNN.GLOBAL_CONTEXT: the KRCNN network with a global-context block starts as
the network without it, lets every output position see the whole RoI, and learns."""

import pytest
import torch
from head_helpers import SHAPE, fit, head_cfg

from kpext.modeling.heads import KpextKRCNNHead, KRCNNCodecKeypointHead


def _heads(head_cls, **target):
    cfg = head_cfg(depth=4, **target)
    plain = head_cls(cfg, SHAPE)
    cfg.MODEL.KPEXT.KRCNN.GLOBAL_CONTEXT = True
    return plain.eval(), head_cls(cfg, SHAPE).eval()


@pytest.mark.parametrize(
    "head_cls,target",
    [(KpextKRCNNHead, {}), (KRCNNCodecKeypointHead, {"CODEC": "softmax_gaussian"})],
)
def test_a_head_with_the_block_loads_one_without_and_computes_the_same_maps(head_cls, target):
    plain, context = _heads(head_cls, **target)
    missing, unexpected = context.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(missing) == ["global_context.fc.bias", "global_context.fc.weight"]
    assert not unexpected
    x = torch.randn(3, SHAPE.channels, 14, 14)
    with torch.no_grad():
        assert torch.equal(plain.layers(x), context.layers(x))


def test_an_output_far_from_a_change_sees_it_only_through_the_block():
    """Four 3x3 convs reach 4 cells: a change in one corner of a 14 x 14 RoI cannot move the
    maps at the opposite corner, unless a block mixes in the whole RoI's mean."""
    plain, context = _heads(KpextKRCNNHead)
    context.load_state_dict(plain.state_dict(), strict=False)
    torch.nn.init.normal_(context.global_context.fc.weight, std=0.1)
    x = torch.randn(1, SHAPE.channels, 14, 14)
    changed = x.clone()
    changed[..., :2, :2] += 3.0
    with torch.no_grad():
        far = (slice(None), slice(None), slice(-4, None), slice(-4, None))
        assert torch.equal(plain.layers(x)[far], plain.layers(changed)[far])
        assert not torch.allclose(context.layers(x)[far], context.layers(changed)[far])


def test_the_block_trains_with_the_head():
    _, context = _heads(KpextKRCNNHead)
    history = fit(context, steps=30)
    assert history[-1]["loss_keypoint"] < 0.7 * history[0]["loss_keypoint"]
    assert context.global_context.fc.weight.abs().sum() > 0  # left its zero start
