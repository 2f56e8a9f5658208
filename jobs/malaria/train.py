"""Malaria: a small CNN that tells parasitized blood cells from uninfected ones.

Reads cell images in the layout of the NIH malaria data set::

    <data>/Parasitized/*.png     label 1 (the "positive" class)
    <data>/Uninfected/*.png      label 0

from the manifest input ``cells`` ($RUNNER_INPUT_CELLS), or ``--data``, or
``malaria/data/cells`` when run by hand from jobs/. No data? Make a synthetic set:

    python malaria/make_synthetic.py malaria/data/cells
    python -m malaria.train --epochs 5

The model stacks Conv2D -> BatchNormalization -> ReLU blocks with max pooling and ends
in a Dense layer with a sigmoid: the probability that the cell is parasitized.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from runner.metrics.callback import RunnerMetrics
from sklearn.model_selection import train_test_split

from common import kit

# Class folders, in label order: Uninfected -> 0, Parasitized -> 1.
CLASSES = ("Uninfected", "Parasitized")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
DEFAULT_DATA = Path("malaria") / "data" / "cells"
SYNTHETIC_MARKER = "synthetic.json"
HOW_TO_GET_DATA = (
    "Generate a synthetic set with `python jobs/malaria/make_synthetic.py jobs/malaria/data/cells` "
    "(from the repository root), or point --data / the manifest input `cells` at the NIH "
    "cell_images directory."
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = kit.base_parser("Train a CNN on malaria cell images.", epochs=10, batch_size=32)
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help=f"image directory (default: ${kit.input_env_var('cells')}, else {DEFAULT_DATA})",
    )
    parser.add_argument(
        "--image-size", type=kit.positive_int, default=64, help="images are resized to SIZE x SIZE"
    )
    parser.add_argument(
        "--validation-split", type=kit.fraction, default=0.15, help="share held out for validation"
    )
    parser.add_argument("--test-split", type=kit.fraction, default=0.15, help="share held out for testing")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate")
    return parser.parse_args(argv)


def find_data_dir(explicit: Path | None) -> Path:
    """--data, else the runner's input, else the by-hand default; checked for the class folders."""
    from_runner = kit.input_dir("cells")
    if explicit is not None:
        data, origin = explicit, "--data"
    elif from_runner is not None:
        data, origin = from_runner, f"${kit.input_env_var('cells')}"
    else:
        data, origin = DEFAULT_DATA, "the default"
    if not data.is_dir():
        raise kit.JobError(f"data directory {data} (from {origin}) does not exist. {HOW_TO_GET_DATA}")
    missing = [name for name in CLASSES if not (data / name).is_dir()]
    if missing:
        raise kit.JobError(
            f"data directory {data} (from {origin}) has no {' or '.join(missing)} folder; "
            f"expected {data}/Parasitized/*.png and {data}/Uninfected/*.png. {HOW_TO_GET_DATA}"
        )
    return data


def list_images(data: Path) -> tuple[np.ndarray, np.ndarray]:
    """All image paths (sorted, so runs are repeatable) and their 0/1 labels."""
    paths: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(CLASSES):
        found = sorted(p for p in (data / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise kit.JobError(f"no images in {data / name}. {HOW_TO_GET_DATA}")
        paths += [str(p) for p in found]
        labels += [label] * len(found)
    return np.array(paths), np.array(labels, dtype=np.float32)


def make_dataset(
    paths: np.ndarray, labels: np.ndarray, image_size: int, batch_size: int, shuffle_seed: int | None
) -> tf.data.Dataset:
    """A tf.data pipeline: read and decode each file, resize, batch.

    Decoded images are cached (as uint8, 12 KB each at 64x64) so files are read once,
    not once per epoch. The model gets float32 pixels in 0..255 and rescales them itself.
    """

    def load(path: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image = tf.image.resize(image, (image_size, image_size), antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8), label

    dataset = tf.data.Dataset.from_tensor_slices((paths, labels))
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE).cache()
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(paths), seed=shuffle_seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32), y))
    return dataset.prefetch(tf.data.AUTOTUNE)


def conv_block(filters: int) -> list[keras.layers.Layer]:
    """Conv2D -> BatchNormalization -> ReLU -> MaxPooling2D.

    BatchNormalization sits between the convolution and its activation, so the convolution
    gets no activation and no bias (BN's own offset replaces the bias). BN's momentum is
    0.9 rather than Keras's 0.99 so its running statistics, which the model uses at
    inference, settle within a few hundred steps on small data sets.
    """
    return [
        keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
        keras.layers.BatchNormalization(momentum=0.9),
        keras.layers.ReLU(),
        keras.layers.MaxPooling2D(),
    ]


def build_model(image_size: int) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=(image_size, image_size, 3), name="image"),
            keras.layers.Rescaling(1.0 / 255),
            *conv_block(16),
            *conv_block(32),
            *conv_block(64),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(1, activation="sigmoid"),
        ],
        name="malaria_cnn",
    )


def main(argv: Sequence[str] | None = None) -> int:
    started = time.monotonic()
    args = parse_args(argv)
    data = find_data_dir(args.data)
    out = kit.start("malaria", args)

    paths, labels = list_images(data)
    n_total = len(paths)
    n_test = max(2, round(n_total * args.test_split))
    n_val = max(2, round(n_total * args.validation_split))
    if n_total - n_test - n_val < 4:
        raise kit.JobError(f"only {n_total} images in {data}: too few to split. {HOW_TO_GET_DATA}")
    # Stratified splits keep the class balance the same in train, validation and test.
    rest_paths, test_paths, rest_labels, test_labels = train_test_split(
        paths, labels, test_size=n_test, stratify=labels, random_state=args.seed
    )
    train_paths, val_paths, train_labels, val_labels = train_test_split(
        rest_paths, rest_labels, test_size=n_val, stratify=rest_labels, random_state=args.seed
    )
    kit.log(
        f"data: {data}: {n_total} images ({int(labels.sum())} parasitized), "
        f"{len(train_paths)} train / {len(val_paths)} validation / {len(test_paths)} test, "
        f"resized to {args.image_size}x{args.image_size}"
    )
    size, batch = args.image_size, args.batch_size
    train_ds = make_dataset(train_paths, train_labels, size, batch, shuffle_seed=args.seed)
    val_ds = make_dataset(val_paths, val_labels, size, batch, shuffle_seed=None)
    test_ds = make_dataset(test_paths, test_labels, size, batch, shuffle_seed=None)

    model = build_model(size)
    model.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate),
        loss="binary_crossentropy",
        metrics=[
            keras.metrics.BinaryAccuracy(name="accuracy"),
            keras.metrics.AUC(name="auc"),
            keras.metrics.Precision(name="precision"),
            keras.metrics.Recall(name="recall"),
        ],
    )
    model.summary(print_fn=lambda line, **_: print(line, flush=True))

    kit.log("training")
    # shuffle=False: train_ds shuffles itself each epoch (Keras cannot shuffle a tf.data.Dataset).
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=args.epochs,
        shuffle=False,
        verbose=2,
        callbacks=[RunnerMetrics(every_n_batches=10)],  # live curves: runner metrics, runner ui
    )
    kit.log("evaluating on the test set")
    test_metrics = model.evaluate(test_ds, verbose=2, return_dict=True)

    reference_x = np.stack([x for x, _ in test_ds.unbatch().take(kit.REFERENCE_SIZE).as_numpy_iterator()])
    # make_synthetic.py leaves a marker file; anything else is taken for real images.
    source = "synthetic-cells" if (data / SYNTHETIC_MARKER).exists() else "cells"
    kit.finish(
        job="malaria",
        model=model,
        history=history,
        out=out,
        args=args,
        test_metrics=test_metrics,
        data_source=source,
        reference_x=reference_x,
        samples={"train": len(train_paths), "val": len(val_paths), "test": len(test_paths)},
        started=started,
        extra={"data_dir": str(data), "image_size": size, "classes": {"0": CLASSES[0], "1": CLASSES[1]}},
    )
    return 0


if __name__ == "__main__":
    sys.exit(kit.run(main))
