"""chemprop 2 reference for issue #7: the same D-MPNN (defaults: hidden 300, depth 3, norm
aggregation, one 300-wide FFN layer, Noam schedule 1e-4 → 1e-3 → 1e-4, batch 64) on the same
CSV, on this machine's CPU, with the stages timed as medai reports them.

Usage: python3 bench/molecules_chemprop.py DATA.csv SMILES_COL TARGET_COL EPOCHS [SEED] [TASK]
Prints one JSON line: featurise molecules/s (SMILES → RDKit → MolGraph), training molecules/s
per epoch (median, featurisation cached as chemprop does), prediction molecules/s (SMILES →
predictions, featurisation included) and the test metric of its own random split.
"""
import csv
import json
import statistics
import sys
import time

import numpy as np
import torch
from lightning import pytorch as pl
from rdkit import Chem, RDLogger

from chemprop import data, featurizers, models, nn

RDLogger.DisableLog("rdApp.*")
path, smiles_col, target_col, epochs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
seed = int(sys.argv[5]) if len(sys.argv) > 5 else 0
task = sys.argv[6] if len(sys.argv) > 6 else "regression"
torch.manual_seed(seed)

rows = list(csv.DictReader(open(path, newline="")))
smis, ys = [], []
for r in rows:
    s = r[smiles_col].strip()
    if Chem.MolFromSmiles(s) is None:
        continue
    smis.append(s)
    ys.append([float(r[target_col])])

feat = featurizers.SimpleMoleculeMolGraphFeaturizer()
t0 = time.perf_counter()
graphs = [feat(Chem.MolFromSmiles(s)) for s in smis]
featurize_s = time.perf_counter() - t0

all_data = [data.MoleculeDatapoint.from_smi(s, y) for s, y in zip(smis, ys)]
mols = [d.mol for d in all_data]
split = "scaffold_balanced" if task == "classification" else "random"
tr, va, te = data.make_split_indices(mols, split, (0.8, 0.1, 0.1), seed=seed)
tr_d, va_d, te_d = data.split_data_by_indices(all_data, tr, va, te)
train = data.MoleculeDataset(tr_d[0], feat)
val = data.MoleculeDataset(va_d[0], feat)
test = data.MoleculeDataset(te_d[0], feat)
for d in (train, val, test):
    d.cache = True
if task == "regression":
    scaler = train.normalize_targets()
    val.normalize_targets(scaler)
    ffn = nn.RegressionFFN(output_transform=nn.UnscaleTransform.from_standard_scaler(scaler))
else:
    ffn = nn.BinaryClassificationFFN()
model = models.MPNN(nn.BondMessagePassing(), nn.NormAggregation(), ffn, batch_norm=False)


class EpochTimer(pl.Callback):
    def __init__(self):
        self.times = []

    def on_train_epoch_start(self, trainer, module):
        self.t = time.perf_counter()

    def on_train_epoch_end(self, trainer, module):
        self.times.append(time.perf_counter() - self.t)


timer = EpochTimer()
trainer = pl.Trainer(
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
    accelerator="cpu",
    devices=1,
    max_epochs=epochs,
    callbacks=[timer],
)
t0 = time.perf_counter()
trainer.fit(
    model,
    data.build_dataloader(train, num_workers=0, seed=seed),
    data.build_dataloader(val, num_workers=0, shuffle=False),
)
train_s = time.perf_counter() - t0

# Prediction from SMILES strings: featurise (uncached) and run the model over every molecule.
t0 = time.perf_counter()
pred_set = data.MoleculeDataset([data.MoleculeDatapoint.from_smi(s) for s in smis], feat)
preds = trainer.predict(model, data.build_dataloader(pred_set, num_workers=0, shuffle=False))
preds = torch.cat(preds).numpy().reshape(-1)
predict_s = time.perf_counter() - t0

te_idx = te[0]
y_te = np.array([ys[i][0] for i in te_idx])
p_te = preds[te_idx]
if task == "regression":
    metric = {"rmse": float(np.sqrt(np.mean((y_te - p_te) ** 2)))}
else:
    from sklearn.metrics import roc_auc_score

    metric = {"auc": float(roc_auc_score(y_te, p_te))}
epoch_times = timer.times[1:] or timer.times
print(
    json.dumps(
        {
            "tool": "chemprop",
            "version": __import__("chemprop").__version__,
            "torch_threads": torch.get_num_threads(),
            "molecules": len(smis),
            "train_molecules": len(tr[0]),
            "featurize_molecules_per_s": len(smis) / featurize_s,
            "train_molecules_per_s": len(tr[0]) / statistics.median(epoch_times),
            "train_seconds": train_s,
            "predict_molecules_per_s": len(smis) / predict_s,
            "test": metric,
        }
    )
)
