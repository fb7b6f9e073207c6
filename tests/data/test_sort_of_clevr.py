import numpy as np
import pytest

from keras_simmim.data import CLEVR_CLASSES
from keras_simmim.data import load_sort_of_clevr_detection
from keras_simmim.data import load_sort_of_clevr_segmentation
from keras_simmim.data.sort_of_clevr import ANSWERS
from keras_simmim.data.sort_of_clevr import COLORS
from keras_simmim.data.sort_of_clevr import language_prior_accuracy
from keras_simmim.data.sort_of_clevr import load_sort_of_clevr
from keras_simmim.data.sort_of_clevr import sort_of_clevr


def read_scene(image):
    """Objects recovered from the pixels alone: colour -> (centre, shape)."""
    objects = {}
    for name, rgb in COLORS.items():
        ys, xs = np.nonzero((image == rgb).all(-1))
        assert len(ys), name
        side = xs.max() - xs.min() + 1
        # A filled square covers its bounding box; a disc about pi/4 of it.
        shape = "square" if len(ys) == side * side else "circle"
        objects[name] = (np.array([ys.mean(), xs.mean()]), shape)
    return objects


def test_answers_agree_with_the_pixels():
    data = sort_of_clevr(12, questions_per_image=6, seed=3)
    size = data["images"].shape[1]
    for i, q, a in zip(data["image_index"], data["questions"],
                       data["answers"]):
        objects = read_scene(data["images"][i])
        colour = next(c for c in COLORS if f" {c} object" in q)
        centre, shape = objects[colour]
        others = {c: np.linalg.norm(o[0] - centre)
                  for c, o in objects.items() if c != colour}
        if "closest" in q:
            expected = objects[min(others, key=others.get)][1]
        elif "furthest" in q:
            expected = objects[max(others, key=others.get)][1]
        elif "how many" in q:
            expected = str(sum(o[1] == shape for o in objects.values()))
        elif "shape" in q:
            expected = shape
        elif "left" in q:
            expected = "left" if centre[1] < size / 2 else "right"
        else:
            expected = "top" if centre[0] < size / 2 else "bottom"
        assert ANSWERS[a] == expected, (q, ANSWERS[a], expected)


def test_shapes_splits_and_determinism():
    data = sort_of_clevr(5, image_size=40, questions_per_image=2, seed=0)
    assert data["images"].shape == (5, 40, 40, 3)
    assert data["images"].dtype == np.uint8
    assert len(data["questions"]) == 20 == len(data["answers"])
    assert data["relational"].sum() == 10
    assert all(c.endswith(".") and "red" in c for c in data["captions"])
    again = sort_of_clevr(5, image_size=40, questions_per_image=2, seed=0)
    np.testing.assert_array_equal(data["images"], again["images"])
    assert list(data["questions"]) == list(again["questions"])
    train = load_sort_of_clevr("train", num_images=20)
    test = load_sort_of_clevr("test", num_images=20)
    assert not np.array_equal(train["images"], test["images"])
    with pytest.raises(ValueError, match="split"):
        load_sort_of_clevr("dev")
    with pytest.raises(ValueError, match="image_size.*24"):
        sort_of_clevr(2, image_size=16)


def test_language_prior_by_hand():
    train = {"questions": np.array(["a?", "a?", "a?", "b?"]),
             "answers": np.array([0, 1, 1, 2])}
    test = {"questions": np.array(["a?", "b?", "c?", "a?"]),
            "answers": np.array([1, 2, 1, 0]),
            "relational": np.array([True, False, False, True])}
    # "a?" -> 1 (2 of 3), "b?" -> 2, unseen "c?" -> overall mode 1.
    got = language_prior_accuracy(train, test)
    assert got == {"all": 0.75, "relational": 0.5, "non_relational": 1.0}


@pytest.mark.parametrize("classes", ["shape", "color", "color_shape"])
def test_segmentation_masks_are_the_objects_pixels_with_their_class(classes):
    images, masks = load_sort_of_clevr_segmentation(
        "validation", num_images=6, image_size=48, classes=classes)
    same, targets = load_sort_of_clevr_detection(
        "validation", num_images=6, image_size=48, classes=classes)
    np.testing.assert_array_equal(images, same)
    assert masks.shape == (6, 48, 48) and masks.dtype == np.int32
    # Background exactly where the image is white.
    np.testing.assert_array_equal(masks == 0, (images == 255).all(axis=-1))
    for n in range(6):
        # Object k is drawn in the k-th colour: all its pixels carry its
        # detection label + 1 and lie inside its detection box.
        for k, rgb in enumerate(COLORS.values()):
            pixels = (images[n] == rgb).all(axis=-1)
            x0, y0, x1, y1 = targets["boxes"][n, k].astype(int)
            inside = np.zeros((48, 48), bool)
            inside[y0:y1, x0:x1] = True
            assert pixels.any() and not (pixels & ~inside).any()
            assert (masks[n][pixels] == 1 + targets["labels"][n, k]).all()
    assert masks.max() <= len(CLEVR_CLASSES[classes])
    with pytest.raises(ValueError, match="classes"):
        load_sort_of_clevr_segmentation("test", 1, classes="size")
