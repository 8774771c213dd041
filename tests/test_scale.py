"""`--mpp auto`'s scan over zooms (lib/data/scale.py) on hand-made responses of a network to the zoom."""
import math

import pytest

from lib.data.scale import SCAN_ZOOMS, scanned_zoom

TRAINING = 16.0  # px: the training nuclei's median diameter


class Response:
    """A network's nuclei, measured in training pixels at each zoom it is asked for; remembers the zooms."""

    def __init__(self, diameter_at):
        self.diameter_at, self.asked = diameter_at, []

    def __call__(self, zoom: float) -> float:
        self.asked.append(zoom)
        return self.diameter_at(zoom)


def test_a_faithful_network_gives_the_exact_zoom_and_the_scan_stops_there():
    # nuclei of 22.4 input px (the training images enlarged x1.4), outlined as they are: 22.4 x zoom training px
    response = Response(lambda zoom: 22.4 * zoom)
    zoom, passes, reached = scanned_zoom(response, TRAINING)
    assert zoom == pytest.approx(TRAINING / 22.4) and reached
    assert passes == len(response.asked) == 5 and response.asked[-1] == pytest.approx(1.0)  # 0.25 ... 1: no more


def test_a_network_that_understates_the_change_is_still_brought_to_the_training_size():
    # the network pulls every nucleus halfway (in log) toward its own size: one pass at zoom 1 would say 1 / 1.18,
    # the crossing says 1 / 1.4
    response = Response(lambda zoom: TRAINING * (1.4 * zoom) ** 0.5)
    zoom, _, _ = scanned_zoom(response, TRAINING)
    assert zoom == pytest.approx(1 / 1.4, rel=0.01)


def test_merged_neighbours_at_low_zoom_and_pieces_at_high_zoom_are_not_taken_for_the_answer():
    def diameter(zoom):  # right zoom 2: far below it neighbours merge, far above it nuclei come out in pieces
        if zoom < 0.4:
            return 30.0
        return TRAINING * zoom / 2 if zoom <= 3 else 5.0
    zoom, _, reached = scanned_zoom(Response(diameter), TRAINING)
    assert zoom == pytest.approx(2.0) and reached


def test_without_a_crossing_the_nearest_zoom_and_without_nuclei_zoom_one():
    zoom, passes, reached = scanned_zoom(Response(lambda zoom: 12.0 if zoom != SCAN_ZOOMS[3] else 15.0), TRAINING)
    assert zoom == pytest.approx(SCAN_ZOOMS[3]) and passes == len(SCAN_ZOOMS) and not reached
    assert scanned_zoom(Response(lambda zoom: math.nan), TRAINING) == (1.0, len(SCAN_ZOOMS), False)
