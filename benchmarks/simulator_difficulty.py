"""How hard is the simulated task? Single-modality vs four-modality accuracy of a small classifier.

    .venv/bin/python benchmarks/simulator_difficulty.py [--cells 3000] [--seed 0] [--folds 5]

Cuts cells with the paper's class composition from simulated fields (in memory, exactly as
`leukoscope simulate dataset` does), computes simple rotation-invariant features per modality (radial intensity and texture
profiles, intensity percentiles, size, shape and count of the stained/dark regions, fine texture), and
cross-validates a logistic-regression classifier (scikit-learn, standardised features) on each modality alone and on all
four together. Prints accuracy and balanced accuracy (mean over folds): a quick check of how the
lights share the class, beside the networks, which take far longer to train.
"""

from __future__ import annotations

import argparse
import itertools
import time

import cv2
import numpy as np

_RINGS = np.arange(0, 44, 4)


def _features(crop: np.ndarray) -> np.ndarray:
    """Rotation-invariant features of one modality's crop (background-normalised)."""
    img = crop.astype(np.float32)
    side = img.shape[0]
    yy, xx = np.mgrid[0:side, 0:side]
    r = np.hypot(yy - side / 2, xx - side / 2)
    border = img[r > side * 0.46]
    bg = float(np.median(border))
    spread = float(np.median(np.abs(border - bg))) + 1e-3
    norm = (img - bg) / max(abs(bg), spread * 10)
    smooth = cv2.GaussianBlur(norm, (0, 0), 1.0)
    lap = np.abs(cv2.Laplacian(smooth, cv2.CV_32F))
    grad = np.hypot(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))
    feats: list[float] = []
    for lo, hi in itertools.pairwise(_RINGS):
        ring = (r >= lo) & (r < hi)
        feats += [float(smooth[ring].mean()), float(norm[ring].std()), float(lap[ring].mean())]
        feats.append(float(grad[ring].mean()))
    centre = norm[r < 26]
    feats += list(np.percentile(centre, [2, 10, 25, 50, 75, 90, 98]))
    noise = cv2.GaussianBlur(norm, (0, 0), 2.0)
    for sign in (1.0, -1.0):
        level = float(np.percentile(sign * noise[r < 30], 85))
        mask = ((sign * noise) > max(level, 0.5 * float((sign * noise).max()))) & (r < 34)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8))
        areas = stats[1:, cv2.CC_STAT_AREA] if count > 1 else np.zeros(1)
        big = areas[areas >= 12]
        feats += [float(mask.sum()), float(len(big)), float(big.max(initial=0))]
    return np.asarray(feats, np.float32)


def main() -> None:
    """Render, featurise, cross-validate, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cells", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()

    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, balanced_accuracy_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from leukoscope.instrument.simulator.composition import DEFAULT_COMPOSITION, apportion
    from leukoscope.instrument.simulator.dataset import FieldCells
    from leukoscope.types import CELL_CLASSES, MODALITIES

    start = time.perf_counter()
    counts = apportion(args.cells, DEFAULT_COMPOSITION)
    labels = []
    per_modality: dict[str, list[np.ndarray]] = {m.value: [] for m in MODALITIES}
    for cell_class, crops, _ in FieldCells(seed=args.seed).cells(counts):
        labels.append(cell_class)
        for modality, crop in crops.items():
            per_modality[modality.value].append(_features(crop))
    y = np.array([CELL_CLASSES.index(c) for c in labels])
    rendered = time.perf_counter() - start
    sets = {name: np.stack(rows) for name, rows in per_modality.items()}
    sets["all four"] = np.concatenate([sets[m.value] for m in MODALITIES], axis=1)
    folds = StratifiedKFold(args.folds, shuffle=True, random_state=args.seed)
    print(
        f"{args.cells} cells ({', '.join(f'{c.value} {counts[c]}' for c in CELL_CLASSES)}), "
        f"rendered and featurised in {rendered:.0f} s; {args.folds}-fold CV, logistic regression"
    )
    print(f"{'modalities':<14}{'accuracy':>10}{'balanced':>10}")
    for name, x in sets.items():
        acc, bal = [], []
        for train, test in folds.split(x, y):
            model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=3000))
            model.fit(x[train], y[train])
            pred = model.predict(x[test])
            acc.append(accuracy_score(y[test], pred))
            bal.append(balanced_accuracy_score(y[test], pred))
        print(f"{name:<14}{100 * np.mean(acc):>9.1f}%{100 * np.mean(bal):>9.1f}%")


if __name__ == "__main__":
    main()
