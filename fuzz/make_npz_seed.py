"""Write a tiny MedMNIST-layout .npz (seed for the npz fuzz target)."""
import sys
import numpy as np

rng = np.random.default_rng(0)
arrays = {}
for split, n in [("train", 6), ("val", 2), ("test", 2)]:
    arrays[f"{split}_images"] = rng.integers(0, 255, (n, 8, 8), dtype=np.uint8)
    arrays[f"{split}_labels"] = rng.integers(0, 2, (n, 1), dtype=np.uint8)
np.savez_compressed(sys.argv[1], **arrays)
