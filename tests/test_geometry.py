"""kpext.geometry: COCO pixel indices <-> continuous coordinates, for numbers, arrays and
tensors."""

import numpy as np
import torch

from kpext.geometry import coco_to_continuous, continuous_to_coco, pixel_containing


def test_pixel_centres_are_half_a_pixel_apart_in_both_conventions():
    assert coco_to_continuous(0.0) == 0.5  # the centre of the first pixel
    assert continuous_to_coco(0.5) == 0.0
    points = np.array([[3.0, 4.0], [0.0, 95.0]])
    np.testing.assert_array_equal(continuous_to_coco(coco_to_continuous(points)), points)
    assert torch.equal(coco_to_continuous(torch.tensor([1.0, 2.0])), torch.tensor([1.5, 2.5]))


def test_pixel_containing_a_point_is_the_floor_of_its_continuous_coordinate():
    assert pixel_containing(3.0) == 3  # a pixel centre
    assert pixel_containing(2.5) == 3  # its left edge belongs to it
    assert pixel_containing(3.49) == 3
    assert pixel_containing(-0.5) == 0  # the image's left edge
    assert pixel_containing(-0.51) == -1


def test_cells_of_every_raster_are_centred_at_their_index_plus_a_half():
    from kpext.geometry import cell_centre, cell_index
    from kpext.modeling.codecs.geometry import cell_centre_xy, cell_centres, peak_cells

    assert cell_centre(0) == 0.5 and cell_index(0.5) == 0.0
    assert torch.equal(cell_centres(3, torch.zeros(1, dtype=torch.float64)),
                       torch.tensor([0.5, 1.5, 2.5], dtype=torch.float64))  # fmt: skip
    maps = torch.zeros(1, 2, 3, 4)
    maps[0, 0, 2, 1] = 5.0  # row 2, column 1
    maps[0, 1, 0, 3] = 7.0
    value, row, col = peak_cells(maps)
    assert value.tolist() == [[5.0, 7.0]] and row.tolist() == [[2, 0]] and col.tolist() == [[1, 3]]
    assert cell_centre_xy(row, col, torch.float32).tolist() == [[[1.5, 2.5], [3.5, 0.5]]]
