"""Built-in video data: scanned digits moving and bouncing on a canvas."""

import numpy as np

from keras_simmim.data.digits import SPLITS
from keras_simmim.data.digits import _split_indices
from keras_simmim.data.digits import all_digit_scans
from keras_simmim.utils.validation import check_choice
from keras_simmim.utils.validation import check_pair
from keras_simmim.utils.validation import check_positive_int
from keras_simmim.utils.validation import check_seed

# The direction a digit starts moving in (image rows grow downwards).
DIRECTIONS = ("up-left", "up-right", "down-left", "down-right")
LABELS = ("digit_direction", "direction", "digit")


def moving_digits(
    num_videos,
    frames=8,
    image_size=32,
    seed=0,
    split="train",
    labels="digit_direction",
    digit_size=None,
    speed=(1.0, 3.0),
):
    """Clips of one scanned digit moving across a black canvas, bouncing
    off its edges (a Moving-MNIST-style set made from real scans).

    Each clip draws a digit scan from the fixed `split` of scikit-learn's
    digits (`load_digits`: the test clips use only test scans), resized to
    `digit_size` pixels, a start position, and a velocity: one of the four
    diagonal `DIRECTIONS`, with a speed per axis drawn from `speed`
    (pixels per frame); the first move stays on the canvas. When the digit
    reaches an edge it bounces (that velocity component flips). Nothing is
    downloaded.

    The label needs time: a single frame shows the digit but not where it
    moves, so `"direction"` and `"digit_direction"` cannot be read from one
    frame.

    Args:
        num_videos: int >= 1, clips to make.
        frames: int >= 2, frames per clip.
        image_size: int, canvas side in pixels (>= 8).
        seed: int, the random stream: the same seed gives the same clips.
        split: `"train"`, `"validation"` or `"test"`: which digit scans.
        labels: `"digit_direction"` (40 classes: `digit * 4 + direction`),
            `"direction"` (4 classes, the index into `DIRECTIONS`: the
            first move's direction) or `"digit"` (10 classes).
        digit_size: int or None, the digit's side in pixels (None: half
            the canvas); at most `image_size`.
        speed: `(low, high)` pixels per frame and axis, `0 < low <= high`.

    Returns:
        `(videos, labels)`: uint8 `(num_videos, frames, image_size,
        image_size, 1)`, and int32 `(num_videos,)`.

    Raises:
        ValueError: an argument out of range, naming it and its value.

    Example:

    >>> videos, labels = moving_digits(4, frames=6, image_size=24, seed=1)
    >>> videos.shape, videos.dtype, labels.shape
    ((4, 6, 24, 24, 1), dtype('uint8'), (4,))
    >>> bool((videos[:, 0] != videos[:, -1]).any())  # the digits moved
    True
    """
    check_positive_int("num_videos", num_videos)
    check_positive_int("frames", frames)
    check_positive_int("image_size", image_size)
    check_choice("split", split, SPLITS)
    check_choice("labels", labels, LABELS)
    check_seed("seed", seed)
    if frames < 2:
        raise ValueError(
            f"`frames` must be at least 2 (motion needs two frames). "
            f"Received: frames={frames}."
        )
    if image_size < 8:
        raise ValueError(
            f"`image_size` must be at least 8. Received: "
            f"image_size={image_size}."
        )
    if digit_size is None:
        digit_size = max(image_size // 2, 4)
    check_positive_int("digit_size", digit_size)
    if digit_size > image_size:
        raise ValueError(
            f"`digit_size` must be at most image_size={image_size}. "
            f"Received: digit_size={digit_size}."
        )
    low, high = _speed_range(speed)
    from PIL import Image

    scans, digits = all_digit_scans()
    pool = _split_indices(digits)[split]
    rng = np.random.default_rng(seed)
    picks = rng.choice(pool, size=num_videos)
    directions = rng.integers(0, len(DIRECTIONS), size=num_videos)
    room = image_size - digit_size
    videos = np.zeros((num_videos, frames, image_size, image_size), "uint8")
    for index, (pick, direction) in enumerate(zip(picks, directions)):
        sprite = np.asarray(Image.fromarray(scans[pick]).resize(
            (digit_size, digit_size), Image.BILINEAR))
        sign = np.array([1.0 if direction >= 2 else -1.0,
                         1.0 if direction % 2 else -1.0])
        velocity = sign * rng.uniform(low, high, size=2)
        # A start from which the first move stays on the canvas, so that
        # it goes in the labelled direction.
        reach = np.minimum(np.abs(velocity), room)
        position = rng.uniform(0.0, room - reach, size=2) + np.where(
            velocity < 0, reach, 0.0)
        for frame in range(frames):
            top, left = np.round(position).astype(int)
            videos[index, frame, top:top + digit_size,
                   left:left + digit_size] = sprite
            position, velocity = _bounce(position + velocity, velocity, room)
    if labels == "direction":
        targets = directions
    elif labels == "digit":
        targets = digits[picks]
    else:
        targets = digits[picks] * len(DIRECTIONS) + directions
    return videos[..., None], np.asarray(targets, "int32")


def _speed_range(speed):
    low, high = check_pair("speed", speed, "(low, high) pixels per frame")
    if not 0.0 < low <= high:
        raise ValueError(
            f"`speed` must satisfy 0 < low <= high. Received: speed={speed!r}."
        )
    return low, high


def _bounce(position, velocity, room):
    """Reflects a position that left `[0, room]` back inside, flipping the
    velocity components that hit an edge."""
    position, velocity = position.copy(), velocity.copy()
    for axis in range(2):
        if position[axis] < 0.0:
            position[axis] = -position[axis]
            velocity[axis] = -velocity[axis]
        elif position[axis] > room:
            position[axis] = 2.0 * room - position[axis]
            velocity[axis] = -velocity[axis]
    position = np.clip(position, 0.0, room)
    return position, velocity
