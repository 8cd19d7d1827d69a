"""The further classes when a lab labels them: cross-validated recall per class and per IG stage.

Reads a simulated dataset with further classes (`leukoscope simulate dataset --extra ...`, whose
`dataset.json` records each cell's maturation stage) and a `leukoscope train` run on it, and prints
from the folds' held-out predictions (the argmax of the mean of the heads, as `train` scores them):
recall per class, and per IG stage what each stage was taken for.

    leukoscope simulate dataset DATA --cells 3000 --extra IG=300,NRBC=300,BLAST=300,RL=300 \\
        --out-px 48 --seed 11
    leukoscope train DATA --folds 3 --epochs 30 --no-final --open-set-rate 0 --out RUN
    .venv/bin/python benchmarks/labelled_classes.py DATA RUN
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from leukoscope.classifier.data import dataset_classes, scan_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data", type=Path, help="dataset root (with the simulator's dataset.json)")
    parser.add_argument("run", type=Path, help="the `leukoscope train` run folder on it")
    args = parser.parse_args()
    records = json.loads((args.data / "dataset.json").read_text())["records"]
    stage_of = {r["id"]: r.get("stage", "") for r in records}
    chosen, relative, labels = scan_dataset(args.data)
    classes = [c.value for c in dataset_classes(args.data, chosen)]
    stages = np.array([stage_of.get(Path(rel).stem, "") for rel in relative])
    truth, guess, stage = [], [], []
    for fold in sorted(args.run.glob("fold_*")):
        index = np.load(fold / "val_index.npy", allow_pickle=False)
        probs = np.load(fold / "val_probs.npy", allow_pickle=False)
        truth.append(labels[index])
        guess.append(probs.mean(axis=1).argmax(axis=1))
        stage.append(stages[index])
    if not truth:
        raise SystemExit(f"{args.run}: no fold_* folders with held-out predictions")
    t, g, s = np.concatenate(truth), np.concatenate(guess), np.concatenate(stage)
    print(f"{len(t)} held-out cells over {len(truth)} fold(s); accuracy {np.mean(t == g):.1%}")
    print("| class | cells | recall |")
    print("| --- | --- | --- |")
    for k, name in enumerate(classes):
        mine = t == k
        print(f"| {name} | {int(mine.sum())} | {np.mean(g[mine] == k):.1%} |")
    if "IG" not in classes:
        return
    ig = classes.index("IG")
    print("\n| IG stage | cells | taken for (share of the stage's cells) |")
    print("| --- | --- | --- |")
    for name in sorted({x for x in s[t == ig] if x}):
        mine = (t == ig) & (s == name)
        shares = {classes[k]: np.mean(g[mine] == k) for k in range(len(classes))}
        taken = ", ".join(
            f"{c} {v:.0%}" for c, v in sorted(shares.items(), key=lambda x: -x[1]) if v
        )
        print(f"| {name} | {int(mine.sum())} | {taken} |")


if __name__ == "__main__":
    main()
