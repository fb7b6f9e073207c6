import numpy as np
import pytest

from keras_simmim.data import DIRECTIONS
from keras_simmim.data import moving_digits


def centre_of_ink(frame):
    rows, cols = np.nonzero(frame[..., 0] > 64)
    return np.array([rows.mean(), cols.mean()])


def test_clips_move_in_their_labelled_direction_and_bounce():
    videos, labels = moving_digits(40, frames=8, image_size=32, seed=1,
                                   labels="direction")
    assert videos.shape == (40, 8, 32, 32, 1) and videos.dtype == np.uint8
    assert set(labels.tolist()) <= set(range(len(DIRECTIONS)))
    bounced = 0
    for video, label in zip(videos, labels):
        step = centre_of_ink(video[1]) - centre_of_ink(video[0])
        name = DIRECTIONS[label]
        assert (step[0] > 0) == name.startswith("down"), (step, name)
        assert (step[1] > 0) == name.endswith("right"), (step, name)
        moves = np.diff([centre_of_ink(f) for f in video], axis=0)
        bounced += bool((np.sign(moves) != np.sign(moves[:1])).any())
    assert bounced > 0  # some digits reached an edge and turned back


def test_labels_seeds_and_splits():
    _, both = moving_digits(30, seed=2)
    _, digit = moving_digits(30, seed=2, labels="digit")
    _, direction = moving_digits(30, seed=2, labels="direction")
    np.testing.assert_array_equal(both, digit * 4 + direction)
    again, _ = moving_digits(3, seed=2)
    np.testing.assert_array_equal(again, moving_digits(3, seed=2)[0])
    assert (moving_digits(3, seed=3)[0] != again).any()
    assert (moving_digits(3, seed=2, split="test")[0] != again).any()


@pytest.mark.parametrize("kwargs, name", [
    (dict(num_videos=0), "num_videos"),
    (dict(num_videos=2, frames=1), "frames"),
    (dict(num_videos=2, labels="colour"), "labels"),
    (dict(num_videos=2, digit_size=40), "digit_size"),
    (dict(num_videos=2, speed=(2, 1)), "speed"),
    (dict(num_videos=2, split="dev"), "split"),
])
def test_bad_arguments_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        moving_digits(**kwargs)
