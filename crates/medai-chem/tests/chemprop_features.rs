//! medai-chem's featurisation against chemprop 2.3.1's own (`SimpleMoleculeMolGraphFeaturizer`
//! defaults) on 38 molecules: ESOL and BBBP samples plus salts, stereo, isotopes, charges,
//! pyrrole N-H, silicon and iodine. The fixture is written by
//! `tests/fixtures/make_chemprop_features.py`.

use medai_chem::{ATOM_FDIM, BOND_FDIM, Mol, MolGraph};
use serde_json::Value;

fn dense(sparse: &Value, width: usize) -> Vec<f64> {
    let mut v = vec![0.0; width];
    for pair in sparse.as_array().unwrap() {
        v[pair[0].as_u64().unwrap() as usize] = pair[1].as_f64().unwrap();
    }
    v
}

#[test]
fn features_equal_chemprops() {
    let text = include_str!("fixtures/chemprop_features.json");
    let fx: Value = serde_json::from_str(text).unwrap();
    let mols = fx["molecules"].as_array().unwrap();
    assert_eq!(mols.len(), 38);
    for m in mols {
        let s = m["smiles"].as_str().unwrap();
        let g = MolGraph::new(&Mol::from_smiles(s).unwrap());
        let atoms = m["atoms"].as_array().unwrap();
        assert_eq!(g.n_atoms, atoms.len(), "{s}: atoms");
        for (i, want) in atoms.iter().enumerate() {
            let want = dense(want, ATOM_FDIM);
            let got = &g.atom_features[i * ATOM_FDIM..(i + 1) * ATOM_FDIM];
            for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (*a as f64 - b).abs() < 1e-5,
                    "{s}: atom {i} feature {k}: {a} vs {b}"
                );
            }
        }
        let bonds = m["bonds"].as_array().unwrap();
        assert_eq!(g.n_edges(), bonds.len(), "{s}: directed bonds");
        for (e, want) in bonds.iter().enumerate() {
            let want = dense(want, BOND_FDIM);
            let got = &g.bond_features[e * BOND_FDIM..(e + 1) * BOND_FDIM];
            for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (*a as f64 - b).abs() < 1e-6,
                    "{s}: edge {e} feature {k}: {a} vs {b}"
                );
            }
        }
        let ints = |k: &str| -> Vec<u32> {
            m[k].as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect()
        };
        assert_eq!(g.src, ints("src"), "{s}: sources");
        assert_eq!(g.dst, ints("dst"), "{s}: targets");
        let rev: Vec<u32> = (0..g.n_edges() as u32).map(|e| e ^ 1).collect();
        assert_eq!(rev, ints("rev"), "{s}: reverse edges");
    }
}
