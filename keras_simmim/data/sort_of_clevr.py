"""Built-in image + text data: Sort-of-CLEVR scenes, captions and questions.

The Relation Networks paper's Sort-of-CLEVR, generated in code (no
download): each image holds one square or circle of each of six colours;
every image comes with a caption and questions in plain English, half
non-relational (shape, left/right, top/bottom of a named object) and half
relational (shape of the closest / furthest object to a named one, count of
objects sharing its shape), each with a one-word answer.
"""

import numpy as np

from keras_simmim.utils.validation import check_choice
from keras_simmim.utils.validation import check_positive_int

COLORS = {
    "red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 70, 220),
    "orange": (245, 150, 30), "gray": (128, 128, 128),
    "yellow": (235, 225, 40),
}
SHAPES = ("square", "circle")
ANSWERS = ("square", "circle", "left", "right", "top", "bottom",
           "1", "2", "3", "4", "5", "6")
NON_RELATIONAL = (
    "what is the shape of the {} object?",
    "is the {} object on the left or on the right?",
    "is the {} object at the top or at the bottom?",
)
RELATIONAL = (
    "what is the shape of the object closest to the {} object?",
    "what is the shape of the object furthest from the {} object?",
    "how many objects have the same shape as the {} object?",
)
# Split -> (seed, default size): fixed, disjoint generator streams.
SPLITS = {"train": (0, 9800), "validation": (1, 200), "test": (2, 1000)}


def _scene(rng, size, radius):
    """Object centres (no overlap) and shapes for one image."""
    centres = []
    while len(centres) < len(COLORS):
        c = rng.integers(radius, size - radius, 2)
        if all(np.abs(c - o).max() > 2 * radius + 1 for o in centres):
            centres.append(c)
    return np.array(centres, "float32"), rng.integers(0, 2, len(COLORS))


def _draw(centres, shapes, size, radius):
    image = np.full((size, size, 3), 255, "uint8")
    yy, xx = np.mgrid[:size, :size]
    for (cy, cx), shape, colour in zip(centres, shapes, COLORS.values()):
        if shape == 0:
            inside = (np.abs(yy - cy) <= radius) & (np.abs(xx - cx) <= radius)
        else:
            inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2
        image[inside] = colour
    return image


def _answers(centres, shapes, obj, size):
    """Answers of the six question templates about object `obj`."""
    cy, cx = centres[obj]
    dist = np.linalg.norm(centres - centres[obj], axis=1)
    others = dist.copy()
    others[obj] = np.inf
    closest = int(np.argmin(others))
    others[obj] = -np.inf
    furthest = int(np.argmax(others))
    return [
        SHAPES[shapes[obj]],
        "left" if cx < size / 2 else "right",
        "top" if cy < size / 2 else "bottom",
        SHAPES[shapes[closest]],
        SHAPES[shapes[furthest]],
        str(int((shapes == shapes[obj]).sum())),
    ]


def caption(centres, shapes, size):
    """A sentence naming every object's shape and quadrant."""
    parts = []
    for (cy, cx), shape, colour in zip(centres, shapes, COLORS):
        where = ("top" if cy < size / 2 else "bottom") + " " + (
            "left" if cx < size / 2 else "right")
        parts.append(f"a {colour} {SHAPES[shape]} at the {where}")
    return ", ".join(parts) + "."


def sort_of_clevr(num_images=1000, image_size=75, questions_per_image=4,
                  seed=0):
    """Generates Sort-of-CLEVR scenes with captions, questions and answers.

    Each image has six non-overlapping objects, one per colour (red, green,
    blue, orange, gray, yellow), each a square or a circle, on white. For
    every image, `questions_per_image` non-relational and as many relational
    questions are drawn (random template, random colour), lower-case
    English ending in "?"; answers are words of `ANSWERS`. The same
    arguments always give the same data.

    Args:
        num_images: int, number of images.
        image_size: int >= 24, side in pixels (75 in the paper).
        questions_per_image: int, questions of each kind per image.
        seed: int, generator seed.

    Returns:
        A dict of numpy arrays: `images` uint8 `(N, S, S, 3)`, `captions`
        `(N,)` str, `boxes` float32 `(N, 6, 4)` (each object's box, in
        `COLORS` order, `"xyxy"` pixel edges) and `shapes` int32 `(N, 6)`
        (0 square, 1 circle); per question (`N * 2 * questions_per_image` rows):
        `image_index` int32, `questions` str, `answers` int32 (index into
        `ANSWERS`), `relational` bool.

    Example:

    >>> data = sort_of_clevr(2, questions_per_image=1)
    >>> data["images"].shape, len(data["questions"])
    ((2, 75, 75, 3), 4)
    >>> str(data["questions"][0]).endswith("?")
    True
    """
    check_positive_int("num_images", num_images)
    check_positive_int("image_size", image_size)
    check_positive_int("questions_per_image", questions_per_image)
    if image_size < 24:
        raise ValueError(
            "`image_size` must be at least 24 pixels to fit six objects. "
            f"Received: image_size={image_size}."
        )
    rng = np.random.default_rng(seed)
    radius = max(2, image_size // 15)
    images, captions, boxes, kinds = [], [], [], []
    index, questions, answers, relational = [], [], [], []
    for i in range(num_images):
        centres, shapes = _scene(rng, image_size, radius)
        images.append(_draw(centres, shapes, image_size, radius))
        # Pixel-edge boxes: a centre pixel c with radius r covers [c - r,
        # c + r + 1) for squares and circles alike.
        boxes.append(np.stack([centres[:, 1] - radius, centres[:, 0] - radius,
                               centres[:, 1] + radius + 1,
                               centres[:, 0] + radius + 1], axis=-1))
        kinds.append(shapes)
        captions.append(caption(centres, shapes, image_size))
        for is_relational in (False, True):
            templates = RELATIONAL if is_relational else NON_RELATIONAL
            for _ in range(questions_per_image):
                t = int(rng.integers(len(templates)))
                obj = int(rng.integers(len(COLORS)))
                answer = _answers(centres, shapes, obj, image_size)[
                    t + 3 * is_relational]
                index.append(i)
                questions.append(templates[t].format(list(COLORS)[obj]))
                answers.append(ANSWERS.index(answer))
                relational.append(is_relational)
    return {
        "images": np.stack(images),
        "captions": np.array(captions),
        "boxes": np.stack(boxes).astype("float32"),
        "shapes": np.stack(kinds).astype("int32"),
        "image_index": np.array(index, "int32"),
        "questions": np.array(questions),
        "answers": np.array(answers, "int32"),
        "relational": np.array(relational),
    }


def load_sort_of_clevr(split="train", num_images=None, image_size=75,
                       questions_per_image=4):
    """The fixed splits of `sort_of_clevr`: train (9,800 images),
    validation (200) and test (1,000), from disjoint generator seeds.

    Args:
        split: `"train"`, `"validation"` or `"test"`.
        num_images: int or None, the first images of the split (None: all).
        image_size, questions_per_image: as in `sort_of_clevr`.

    Example:

    >>> test = load_sort_of_clevr("test", num_images=3)
    >>> test["images"].shape[0], int(test["relational"].sum())
    (3, 12)
    """
    check_choice("split", split, SPLITS)
    seed, default = SPLITS[split]
    return sort_of_clevr(num_images or default, image_size,
                         questions_per_image, seed=seed + 1000)


def language_prior_accuracy(train, test):
    """Accuracy of the best answer given the question alone.

    For every question string, the answer most frequent among the training
    questions with that exact string (ties: the lower answer index); over
    test questions never seen in training, the overall most frequent
    answer. This is what a model that ignores the image can reach.

    Args:
        train, test: dicts from `sort_of_clevr` / `load_sort_of_clevr`.

    Returns:
        `{"all", "relational", "non_relational"}` accuracies in [0, 1].
    """
    counts = {}
    for question, answer in zip(train["questions"], train["answers"]):
        counts.setdefault(str(question), np.zeros(len(ANSWERS), int))[
            answer] += 1
    fallback = int(np.bincount(train["answers"],
                               minlength=len(ANSWERS)).argmax())
    guess = np.array([
        int(counts[str(q)].argmax()) if str(q) in counts else fallback
        for q in test["questions"]
    ])
    right = guess == test["answers"]
    rel = test["relational"]
    return {
        "all": float(right.mean()),
        "relational": float(right[rel].mean()),
        "non_relational": float(right[~rel].mean()),
    }
