"""SimMIM on real handwritten digits, end to end, with the library's API.

Pretrains a small ViT on the unlabeled digits training images, then
fine-tunes it with 10% of the labels, probes its frozen features, and
inpaints held-out digits. Runs on any backend in a few minutes on a CPU:

    KERAS_BACKEND=torch python examples/digits_pretrain_finetune.py

(`--quick` runs a few steps of each stage, to check the script works.)
"""

import argparse

import keras
import keras_hub
import numpy as np

import keras_simmim
from keras_simmim import data
from keras_simmim import downstream
from keras_simmim.visualization import ReconstructionPreview

parser = argparse.ArgumentParser()
parser.add_argument("--quick", action="store_true")
parser.add_argument("--output", default="digits_example")
args = parser.parse_args()
pretrain_epochs, finetune_steps = (1, 10) if args.quick else (60, 300)

keras.utils.set_random_seed(0)
train_px, train_y = data.load_digits("train")        # uint8, 32x32x3
test_px, test_y = data.load_digits("test")
test_x = data.normalize(test_px)

# 1. Pretrain on unlabeled images with SimMIM's augmentation.
backbone = keras_hub.models.ViTBackbone(
    image_shape=(32, 32, 3), patch_size=4, num_layers=4, num_heads=4,
    hidden_dim=64, mlp_dim=128,
)
model = keras_simmim.SimMIMModel(backbone, mask_patch_size=8, mask_ratio=0.6)
unlabeled = data.from_arrays(train_px, augment=True, shuffle=True,
                             batch_size=64, drop_remainder=True)
steps = pretrain_epochs * (len(train_px) // 64)
model.compile(optimizer=keras.optimizers.AdamW(
    downstream.warmup_cosine(2e-3, steps, steps // 10), weight_decay=0.05,
    global_clipnorm=5.0))
model.fit(unlabeled, epochs=pretrain_epochs, callbacks=[
    ReconstructionPreview(test_x[:8], f"{args.output}/previews",
                          every=max(1, pretrain_epochs // 6))])

# 2. Inpaint held-out digits: visible pixels stay, masked ones are filled.
mask = model.masking(test_x[:64])
filled = model.inpaint(test_x[:64], mask)
pixel_mask = downstream.pixel_mask_from_grid(
    keras.ops.convert_to_numpy(mask), (32, 32))
print("inpainting PSNR (dB) on masked pixels:", downstream.masked_psnr(
    data.denormalize(filled), test_px[:64], pixel_mask), "vs mean fill",
    downstream.masked_psnr(np.round(downstream.mean_fill(
        test_px[:64], pixel_mask)), test_px[:64], pixel_mask))

# 3. Linear probe and k-NN on frozen features of block 2, with 10% labels.
subset = data.stratified_subset(train_y, 0.1, seed=0)
features = downstream.extract_features(
    model.backbone, data.normalize(train_px[subset]), feature_layer=2)
test_features = downstream.extract_features(model.backbone, test_x,
                                            feature_layer=2)
probe = downstream.fit_linear_probe(features, train_y[subset], 10)
print("linear probe accuracy:",
      probe.evaluate(test_features, test_y, verbose=0)[1])
print("k-NN accuracy:", downstream.knn_accuracy(
    features, train_y[subset], test_features, test_y, k=10))

# 4. Fine-tune with 10% of the labels (layer-wise lr decay, warm-up +
#    cosine). This trains the backbone itself, so it comes last.
labelled = data.from_arrays(train_px[subset], train_y[subset], augment=True,
                            flip=False, shuffle=True, batch_size=32).repeat()
classifier = keras_simmim.SimMIMClassifier(model.backbone, num_classes=10)
classifier.compile_for_finetuning(learning_rate=2e-3,
                                  total_steps=finetune_steps,
                                  layer_decay=0.75)
classifier.fit(labelled, steps_per_epoch=finetune_steps, epochs=1)
print("fine-tuned test accuracy:",
      classifier.evaluate(test_x, test_y, verbose=0)[1])
