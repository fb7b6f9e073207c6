"""Detect handwritten digits with a SimMIM-pretrained ViT under RetinaNet.

SimMIM pretrains a 4-layer ViT on canvases of scattered handwritten digits
(`data.load_digit_detection`: scikit-learn's scans, 2-5 per 64x64 canvas,
used without their boxes). `downstream.build_object_detector` then puts
the same backbone under ViTDet's simple feature pyramid and keras-hub's
`RetinaNetObjectDetector`, fine-tuned on the boxes. Prints COCO mAP@0.5
and mAP@[.5:.95] (pycocotools' `COCOeval`, `downstream.coco_metrics`) on
the held-out test canvases, whose scans no training canvas uses, and
writes `detections.png`: true boxes above, predicted boxes (class,
confidence) below. `--scratch` skips pretraining (random init), for the
comparison. Needs pycocotools (`pip install keras-simmim[detection]`);
nothing is downloaded.

    KERAS_BACKEND=torch python examples/detect.py [--steps 1500] [--scratch]

Detection starts slowly: `benchmarks/dense/detection_curve.md` measured
this detector from random init at validation mAP@0.5 4.2% after 300 steps,
17.7% after 600 and 24.8% after 1,200 (one run, JAX, one core), so the
default trains 1,500 steps; the full run of this script is not timed
here. `--quick` runs a few steps of each stage to check the script works.
"""

import argparse
import os

parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--pretrain-steps", type=int, default=800,
                    help="SimMIM steps of 32 canvases (default: %(default)s).")
parser.add_argument("--steps", type=int, default=1500,
                    help="Detector fine-tuning steps of 32 canvases "
                    "(default: %(default)s).")
parser.add_argument("--learning-rate", type=float, default=1e-3,
                    help="Adam's peak, warm-up + cosine (default: "
                    "%(default)s).")
parser.add_argument("--scratch", action="store_true",
                    help="Fine-tune a randomly initialised backbone instead "
                    "of a SimMIM-pretrained one.")
parser.add_argument("--output", default="detect",
                    help="Output folder for detections.png (default: "
                    "%(default)s, in the current directory).")
parser.add_argument("--quick", action="store_true",
                    help="A few steps of each stage, to check the script.")
args = parser.parse_args()
if args.quick:
    args.pretrain_steps, args.steps = 2, 2

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402
from PIL import ImageDraw  # noqa: E402

import keras_simmim  # noqa: E402
from keras_simmim import data  # noqa: E402
from keras_simmim import downstream  # noqa: E402

keras.utils.set_random_seed(0)
canvases = 64 if args.quick else None  # None: the split's 1024 / 256
train_images, train_targets = data.load_digit_detection("train", canvases)
test_images, test_targets = data.load_digit_detection("test", canvases)
print(f"{len(train_images)} training canvases, {len(test_images)} test "
      "canvases (64x64, 2-5 digits each)")

backbone = keras_hub.models.ViTBackbone(
    image_shape=(64, 64, 3), patch_size=8, num_layers=4, num_heads=4,
    hidden_dim=64, mlp_dim=128)
if not args.scratch:
    simmim = keras_simmim.SimMIMModel(backbone, mask_patch_size=16,
                                      mask_ratio=0.6, seed=0)
    simmim.compile(optimizer=simmim.default_optimizer(downstream.warmup_cosine(
        2e-3, args.pretrain_steps, max(1, args.pretrain_steps // 10))))
    print(f"SimMIM pretraining, {args.pretrain_steps} steps (no boxes)")
    simmim.fit(data.from_arrays(train_images, augment=True, shuffle=True,
                                batch_size=32, drop_remainder=True).repeat(),
               steps_per_epoch=args.pretrain_steps, epochs=1, verbose=2)

# RetinaNet on P3-P5 (strides 8-32) with anchors of 2 strides: digits are
# 14-24 px, smaller than keras-hub's default anchors.
detector = downstream.build_object_detector(
    backbone, num_classes=10, bounding_box_format="xyxy", min_level=3,
    max_level=5, anchor_size=2, pre_logits_num_conv_layers=2,
    prediction_decoder=keras_hub.layers.NonMaxSuppression(
        bounding_box_format="xyxy", from_logits=True,
        confidence_threshold=0.05, max_detections=20))
detector.compile(optimizer=keras.optimizers.Adam(downstream.warmup_cosine(
    args.learning_rate, args.steps, max(1, args.steps // 10)),
    global_clipnorm=10.0))
batches = tf.data.Dataset.from_tensor_slices(
    (data.normalize(train_images), train_targets)).shuffle(
    len(train_images), seed=0).repeat().batch(32, drop_remainder=True)
print(f"Fine-tuning the detector, {args.steps} steps "
      f"({'random init' if args.scratch else 'SimMIM-pretrained'} backbone)")
detector.fit(batches, steps_per_epoch=args.steps, epochs=1, verbose=2)

detections = detector.predict(data.normalize(test_images), batch_size=64,
                              verbose=0)
scores = downstream.coco_metrics(detections, test_targets, (64, 64),
                                 num_classes=10)
print(f"Test canvases: mAP@0.5 {100 * scores['mAP@0.5']:.1f}, "
      f"mAP@[.5:.95] {100 * scores['mAP@[.5:.95]']:.1f} (COCO, points)")


def drawn(image, boxes, labels, confidence=None, color=(0, 255, 0)):
    """The canvas, 4x larger, with its boxes and classes drawn."""
    picture = Image.fromarray(image.astype("uint8")).resize((256, 256),
                                                           Image.NEAREST)
    pen = ImageDraw.Draw(picture)
    for k, (box, label) in enumerate(zip(boxes, labels)):
        if label < 0 or (confidence is not None and confidence[k] <= 0):
            continue
        pen.rectangle([4 * float(v) for v in box], outline=color, width=2)
        text = str(int(label)) + (
            "" if confidence is None else f" {confidence[k]:.2f}")
        pen.text((4 * float(box[0]) + 2, 4 * float(box[1]) + 1), text,
                 fill=color)
    return np.asarray(picture)


columns = range(min(4, len(test_images)))
truth = [drawn(test_images[i], test_targets["boxes"][i],
               test_targets["labels"][i]) for i in columns]
found = [drawn(test_images[i], detections["boxes"][i],
               detections["labels"][i], detections["confidence"][i],
               color=(255, 160, 0)) for i in columns]
os.makedirs(args.output, exist_ok=True)
path = os.path.join(args.output, "detections.png")
Image.fromarray(np.concatenate(
    [np.concatenate(truth, axis=1), np.concatenate(found, axis=1)],
    axis=0)).save(path)
print(f"Wrote {path}: true boxes (top), predicted class and confidence "
      "(bottom)")
