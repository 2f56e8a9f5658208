"""MNIST, the TensorFlow beginner warm-up, as a runner job.

The model is the one from https://www.tensorflow.org/tutorials/quickstart/beginner:
flatten the 28x28 image, one hidden Dense layer of 128 ReLU units, Dropout, and a
Dense layer of 10 logits (one per digit).

MNIST is downloaded by Keras. Without network access the job falls back to
scikit-learn's bundled 8x8 digits, brought to MNIST's 28x28 layout, and says so.

Run it by hand from the jobs/ directory:

    python -m mnist.train --epochs 5 --formats keras,h5,savedmodel,onnx
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from runner.metrics.callback import RunnerMetrics
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from common import kit

Split = tuple[np.ndarray, np.ndarray]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = kit.base_parser("Train the TensorFlow beginner MNIST model.", epochs=5, batch_size=32)
    parser.add_argument(
        "--dataset",
        choices=["auto", "mnist", "digits"],
        default="auto",
        help="auto: MNIST, or scikit-learn's digits when MNIST cannot be downloaded",
    )
    parser.add_argument(
        "--download-timeout",
        type=float,
        default=10.0,
        help="seconds to wait on the network before giving up on the MNIST download",
    )
    parser.add_argument("--max-train", type=kit.positive_int, help="use at most this many training images")
    parser.add_argument("--max-test", type=kit.positive_int, help="use at most this many test images")
    parser.add_argument(
        "--validation-split", type=kit.fraction, default=0.1, help="share of the training images held out"
    )
    return parser.parse_args(argv)


def load_mnist(timeout: float) -> tuple[Split, Split]:
    """``keras.datasets.mnist.load_data()`` (cached in ~/.keras after the first download).

    The download goes through urllib, which waits on a silent network for as long as the
    socket timeout allows: set one, so an offline node fails fast instead of hanging.
    """
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    finally:
        socket.setdefaulttimeout(previous)
    return (x_train, y_train), (x_test, y_test)


def load_digits_as_mnist(seed: int) -> tuple[Split, Split]:
    """scikit-learn's 1,797 bundled 8x8 digits (values 0..16), made to look like MNIST.

    MNIST digits are uint8 (0..255) drawn in a 20x20 box centred in a 28x28 image, so:
    scale 0..16 to 0..255, resize 8x8 to 20x20, pad 4 pixels on each side, and split
    80/20 into train and test (stratified by digit).
    """
    digits = load_digits()
    images = digits.images.astype(np.float32)[..., np.newaxis] * (255.0 / 16.0)
    images = tf.image.resize(images, (20, 20), method="bilinear").numpy()
    images = np.pad(images[..., 0], ((0, 0), (4, 4), (4, 4)))
    images = np.clip(np.round(images), 0, 255).astype(np.uint8)
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target.astype(np.uint8), test_size=0.2, random_state=seed, stratify=digits.target
    )
    return (x_train, y_train), (x_test, y_test)


def load_data(dataset: str, timeout: float, seed: int) -> tuple[Split, Split, str]:
    """The train and test splits and the name of the source they came from."""
    if dataset in ("auto", "mnist"):
        try:
            train, test = load_mnist(timeout)
            return train, test, "mnist"
        except Exception as error:
            if dataset == "mnist":
                raise kit.JobError(f"could not load MNIST: {error}") from error
            kit.log(f"MNIST is not available ({type(error).__name__}: {error})")
            kit.log(
                "falling back to scikit-learn's bundled digits (8x8, upscaled to 28x28); "
                "use --dataset mnist to insist on MNIST"
            )
    return *load_digits_as_mnist(seed), "sklearn-digits-fallback"


def build_model() -> keras.Model:
    """Flatten -> Dense(128, relu) -> Dropout(0.2) -> Dense(10): logits, one per digit."""
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28), name="image"),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(10),
        ],
        name="mnist_mlp",
    )


def main(argv: Sequence[str] | None = None) -> int:
    started = time.monotonic()
    args = parse_args(argv)
    out = kit.start("mnist", args)

    (x_train, y_train), (x_test, y_test), source = load_data(args.dataset, args.download_timeout, args.seed)
    x_train, y_train = x_train[: args.max_train], y_train[: args.max_train]
    x_test, y_test = x_test[: args.max_test], y_test[: args.max_test]
    # Pixels are 0..255; the network learns better from 0..1.
    x_train = x_train.astype(np.float32) / 255.0
    x_test = x_test.astype(np.float32) / 255.0
    n_train, n_val = kit.split_sizes(len(x_train), args.validation_split)
    kit.log(
        f"data: {source}, {n_train} train / {n_val} validation / {len(x_test)} test "
        f"images of {x_train.shape[1]}x{x_train.shape[2]}"
    )

    model = build_model()
    # The model outputs logits (no softmax), so the loss applies the softmax itself.
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.summary(print_fn=lambda line, **_: print(line, flush=True))

    kit.log("training")
    history = model.fit(
        x_train,
        y_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_split=args.validation_split,
        verbose=2,
        callbacks=[RunnerMetrics(every_n_batches=10)],  # live curves: runner metrics, runner ui
    )
    kit.log("evaluating on the test set")
    test_metrics = model.evaluate(x_test, y_test, batch_size=args.batch_size, verbose=2, return_dict=True)

    # To read the logits as probabilities, put a softmax on top (as the tutorial does).
    probabilities = keras.Sequential([model, keras.layers.Softmax()])
    guesses = np.argmax(probabilities(x_test[:10], training=False), axis=1)
    kit.log(f"first test digits: true {y_test[:10].tolist()}, predicted {guesses.tolist()}")

    kit.finish(
        job="mnist",
        model=model,
        history=history,
        out=out,
        args=args,
        test_metrics=test_metrics,
        data_source=source,
        reference_x=x_test,
        samples={"train": n_train, "val": n_val, "test": len(x_test)},
        started=started,
    )
    return 0


if __name__ == "__main__":
    sys.exit(kit.run(main))
