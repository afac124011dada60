"""RDKit oracle for medai-chem: one TSV line per CSV row with the facts medai must reproduce.

Usage: python3 rdkit_oracle.py FILE.csv SMILES_COLUMN
Columns: line, status (OK/ERR), heavy atoms, bonds, aromatic atoms, formal charges (per atom),
rings, total H, then per atom "Z:totaldegree:H:hyb:chiral:mass", per bond
"type:conj:ring:stereo", and the Murcko scaffold (includeChirality=False).
Needs rdkit==2026.9.1 (earlier releases count rings differently on two macrocycles).
"""
import csv
import sys

import rdkit
from rdkit import Chem, RDLogger
from rdkit.Chem.Scaffolds import MurckoScaffold

RDLogger.DisableLog("rdApp.*")
print(f"#rdkit\t{rdkit.__version__}")
path, column = sys.argv[1], sys.argv[2]
with open(path, newline="") as f:
    reader = csv.DictReader(f)
    for row in reader:
        line = reader.line_num
        s = row[column].strip()
        m = Chem.MolFromSmiles(s)
        if m is None:
            print(f"{line}\tERR")
            continue
        atoms = list(m.GetAtoms())
        charges = ",".join(str(a.GetFormalCharge()) for a in atoms)
        facts = ";".join(
            f"{a.GetAtomicNum()}:{a.GetTotalDegree()}:{a.GetTotalNumHs()}:{int(a.GetHybridization())}"
            f":{int(a.GetChiralTag())}:{a.GetIsAromatic():d}:{a.GetMass():.4f}"
            for a in atoms
        )
        bonds = ";".join(
            f"{b.GetBondTypeAsDouble()}:{b.GetIsConjugated():d}:{b.IsInRing():d}:{int(b.GetStereo())}"
            for b in m.GetBonds()
        )
        scaffold = MurckoScaffold.MurckoScaffoldSmiles(mol=m, includeChirality=False)
        print(
            "\t".join(
                str(x)
                for x in [
                    line,
                    "OK",
                    sum(1 for a in atoms if a.GetAtomicNum() > 1),
                    m.GetNumBonds(),
                    sum(1 for a in atoms if a.GetIsAromatic()),
                    charges,
                    m.GetRingInfo().NumRings(),
                    sum(a.GetTotalNumHs() for a in atoms),
                    facts,
                    bonds,
                    scaffold,
                ]
            )
        )
