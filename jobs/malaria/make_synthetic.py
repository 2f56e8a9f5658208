"""Generate a small synthetic stand-in for the NIH malaria cell images.

The real data set (https://lhncbc.nlm.nih.gov/LHC-research/LHC-projects/image-processing/
malaria-datasheet.html, 27,558 PNGs) has one folder per class::

    cells/
      Parasitized/*.png
      Uninfected/*.png

This script writes the same layout with drawn cells: a pale pink round cell on a black
background, of varying size, shape, tint and texture. Parasitized cells carry one to three
dark purple dots (the stained parasite); some uninfected cells carry faint pink blotches,
so a model has to look at colour and contrast rather than "any spot at all".

The output is deterministic: image ``i`` of a class depends only on the seed, the class
and ``i``, so a larger ``--per-class`` keeps the first images unchanged.

Usage (no TensorFlow needed, only NumPy and Pillow)::

    python jobs/malaria/make_synthetic.py jobs/malaria/data/cells --per-class 300
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("Parasitized", "Uninfected")
MARKER = "synthetic.json"


def _cell(rng: np.random.Generator, parasitized: bool) -> np.ndarray:
    """One RGB uint8 image of a cell."""
    size = int(rng.integers(80, 129))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    centre = size / 2 + rng.normal(0, size * 0.03, 2)
    radius_a, radius_b = rng.uniform(0.36, 0.46, 2) * size
    angle = rng.uniform(0, np.pi)
    dy, dx = yy - centre[0], xx - centre[1]
    u = (dx * np.cos(angle) + dy * np.sin(angle)) / radius_a
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) / radius_b
    r = np.sqrt(u**2 + v**2)  # < 1 inside the cell

    # Pale pink, a little darker towards the rim, with a grainy texture.
    base = np.array([228, 178, 190], np.float32) + rng.normal(0, 8, 3)
    shade = 1.0 - 0.12 * np.clip(r, 0, 1) ** 2
    image = base * shade[..., None] + rng.normal(0, 5, (size, size, 1))

    def blob(colour: np.ndarray, radius: float, strength: float) -> None:
        # A soft round spot somewhere well inside the cell.
        rho, phi = rng.uniform(0, 0.6), rng.uniform(0, 2 * np.pi)
        cy = centre[0] + rho * radius_b * np.sin(phi)
        cx = centre[1] + rho * radius_a * np.cos(phi)
        weight = np.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius**2))) * strength
        image[:] = image * (1 - weight[..., None]) + colour * weight[..., None]

    if parasitized:
        for _ in range(int(rng.integers(1, 4))):
            purple = np.array([95, 40, 125], np.float32) + rng.normal(0, 10, 3)
            blob(purple, rng.uniform(2.5, 5.0), rng.uniform(0.85, 1.0))
    elif rng.random() < 0.4:
        for _ in range(int(rng.integers(1, 3))):
            pink = np.array([205, 150, 170], np.float32) + rng.normal(0, 6, 3)
            blob(pink, rng.uniform(3.0, 7.0), rng.uniform(0.5, 0.8))

    # Outside the cell: black, as in the NIH crops; a soft edge of about a pixel.
    edge = np.clip((1.0 - r) * min(radius_a, radius_b), 0, 1)
    cell: np.ndarray = np.clip(image * edge[..., None], 0, 255).astype(np.uint8)
    return cell


def generate(out_dir: Path, per_class: int, seed: int = 0) -> dict[str, int]:
    """Write ``per_class`` PNGs into ``out_dir/<class>/``; return the count per class."""
    counts: dict[str, int] = {}
    for label, name in enumerate(CLASSES):
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            rng = np.random.default_rng([seed, label, index])
            image = _cell(rng, parasitized=name == "Parasitized")
            Image.fromarray(image).save(folder / f"synthetic_{name.lower()}_{index:05d}.png")
        counts[name] = per_class
    # A marker, so the training job can report that it learned from drawings.
    marker = {"generator": "malaria/make_synthetic.py", "seed": seed, "per_class": per_class}
    (out_dir / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("out_dir", type=Path, help="directory to create (e.g. jobs/malaria/data/cells)")
    parser.add_argument("--per-class", type=int, default=300, help="images per class")
    parser.add_argument("--seed", type=int, default=0, help="seed; the same seed gives the same images")
    args = parser.parse_args(argv)
    if args.per_class <= 0:
        parser.error("--per-class must be positive")
    counts = generate(args.out_dir, args.per_class, args.seed)
    listing = ", ".join(f"{count} {name}" for name, count in counts.items())
    print(f"==> wrote {listing} synthetic cell images to {args.out_dir}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
