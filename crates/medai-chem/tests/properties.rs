//! Property tests of the SMILES front end: arbitrary input never panics, generated molecules
//! keep their atoms, and canonical SMILES is a fixed point that preserves every count.

use medai_chem::{Mol, MolGraph, murcko_scaffold};
use proptest::prelude::*;

/// A random valid-by-construction SMILES: a chain of organic-subset atoms with branches, a ring
/// and a salt part; returns the SMILES and its heavy-atom count.
fn molecule() -> impl Strategy<Value = (String, usize)> {
    let atom = prop::sample::select(vec![
        "C", "N", "O", "Cl", "F", "S", "[NH3+]", "[O-]", "[13CH3]",
    ]);
    (
        prop::collection::vec((atom, 0u8..3), 1..12),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(chain, ring, salt)| {
            let mut s = String::new();
            let mut n = 0;
            for (i, (a, branch)) in chain.iter().enumerate() {
                // Terminal atoms (halogens, charged groups) only as branches off a carbon.
                let terminal = matches!(*a, "Cl" | "F" | "[NH3+]" | "[O-]" | "[13CH3]");
                if terminal {
                    s.push_str(&format!("C({a})"));
                    n += 2;
                } else {
                    s.push_str(a);
                    n += 1;
                }
                // Branches only on chain carbons (O, S would exceed their valence).
                if *branch == 1 && *a == "C" && i + 1 < chain.len() {
                    s.push_str("(C)");
                    n += 1;
                }
            }
            if ring {
                s.push_str("c1ccccc1");
                n += 6;
            }
            if salt {
                s.push_str(".[Na+]");
                n += 1;
            }
            (s, n)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn arbitrary_text_never_panics(s in "[CNOcnos()=#\\[\\]+\\-0-9%@/\\\\.H]{0,40}") {
        if let Ok(m) = Mol::from_smiles(&s) {
            let g = MolGraph::new(&m);
            prop_assert_eq!(g.n_edges(), 2 * m.bonds.len());
            let _ = murcko_scaffold(&m);
        }
    }

    #[test]
    fn generated_molecules_keep_their_atoms_and_canonicalise_stably((s, n) in molecule()) {
        let m = Mol::from_smiles(&s).map_err(|e| TestCaseError::fail(format!("{s}: {e}")))?;
        prop_assert_eq!(m.heavy_atoms(), n, "{}", s);
        let c = Mol::canonical_smiles(&s, true).unwrap();
        let again = Mol::from_smiles(&c).unwrap();
        prop_assert_eq!(Mol::canonical_smiles(&c, true).unwrap(), c.clone());
        prop_assert_eq!(again.heavy_atoms(), m.heavy_atoms());
        prop_assert_eq!(again.total_h(), m.total_h());
        prop_assert_eq!(again.aromatic_atoms(), m.aromatic_atoms());
        prop_assert_eq!(again.net_charge(), m.net_charge());
        prop_assert_eq!(again.rings.len(), m.rings.len());
        // A scaffold is a substructure: never more heavy atoms than the molecule.
        let sc = murcko_scaffold(&m).unwrap();
        if !sc.is_empty() {
            prop_assert!(Mol::from_smiles(&sc).unwrap().heavy_atoms() <= m.heavy_atoms());
        } else {
            prop_assert!(m.rings.is_empty());
        }
    }
}
