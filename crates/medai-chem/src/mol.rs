//! SMILES → a sanitised molecular graph with the per-atom and per-bond facts that features and
//! scaffolds need, as RDKit computes them (valence, implicit hydrogens, aromaticity,
//! hybridisation, conjugation, symmetrised SSSR rings).

use crate::ChemError;
use cosmolkit::{BondOrder, Molecule as CkMolecule};

/// One heavy atom (or an explicit hydrogen that sanitisation kept, e.g. `[2H]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Atom {
    /// Atomic number (0 for a dummy atom `*`).
    pub atomic_number: u8,
    /// Element symbol (`C`, `Cl`, …).
    pub symbol: &'static str,
    /// Explicit neighbours in the graph.
    pub degree: u8,
    /// Attached hydrogens, explicit and implicit (RDKit `GetTotalNumHs`).
    pub total_h: u8,
    /// Formal charge.
    pub formal_charge: i8,
    /// Chiral tag, RDKit's code (0 unspecified, 1 CW, 2 CCW, 3 other, …).
    pub chiral_tag: u8,
    /// Hybridisation, RDKit's code (0 unspecified, 1 S, 2 SP, 3 SP2, 4 SP3, 5 SP2D, 6 SP3D,
    /// 7 SP3D2, 8 other).
    pub hybridization: u8,
    /// Aromatic after RDKit's aromaticity model.
    pub aromatic: bool,
    /// Mass (the isotope's mass if one is given, else the standard atomic weight).
    pub mass: f64,
    /// Isotope mass number, if written.
    pub isotope: Option<u16>,
    /// Member of at least one ring.
    pub in_ring: bool,
}

/// Bond types, as RDKit's `BondType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BondKind {
    /// Single.
    Single,
    /// Double.
    Double,
    /// Triple.
    Triple,
    /// Aromatic.
    Aromatic,
    /// Anything else (dative, quadruple, …).
    Other,
}

impl BondKind {
    /// The bond order in valence terms (aromatic 1.5 counts as 1 when hydrogens are moved).
    pub fn valence(self) -> u8 {
        match self {
            BondKind::Double => 2,
            BondKind::Triple => 3,
            _ => 1,
        }
    }
}

/// One bond.
#[derive(Clone, Debug, PartialEq)]
pub struct Bond {
    /// First atom.
    pub begin: usize,
    /// Second atom.
    pub end: usize,
    /// Bond type.
    pub kind: BondKind,
    /// Conjugated (RDKit's conjugation perception).
    pub conjugated: bool,
    /// Member of at least one ring.
    pub in_ring: bool,
    /// Double-bond stereo, RDKit's code (0 none, 1 any, 2 Z, 3 E, 4 cis, 5 trans, …).
    pub stereo: u8,
}

/// A sanitised molecule: atoms, bonds and rings, hydrogens implicit (as RDKit's `MolFromSmiles`).
#[derive(Clone, Debug)]
pub struct Mol {
    /// Atoms, in SMILES order.
    pub atoms: Vec<Atom>,
    /// Bonds, in SMILES order.
    pub bonds: Vec<Bond>,
    /// Rings of the symmetrised SSSR (RDKit's `RingInfo`), as atom indices.
    pub rings: Vec<Vec<usize>>,
    /// Neighbour lists: `(atom, bond)` per atom.
    pub adjacency: Vec<Vec<(usize, usize)>>,
}

impl Mol {
    /// Parse and sanitise a SMILES string (RDKit's rules: valence, aromaticity, kekulisation,
    /// explicit hydrogens removed). Rejects what RDKit rejects.
    pub fn from_smiles(smiles: &str) -> Result<Mol, ChemError> {
        let s = smiles.trim();
        if s.is_empty() {
            return Err(ChemError::InvalidSmiles("empty SMILES".into()));
        }
        let m = CkMolecule::from_smiles(s).map_err(|e| ChemError::InvalidSmiles(e.to_string()))?;
        Mol::from_cosmolkit(&m)
    }

    fn from_cosmolkit(m: &CkMolecule) -> Result<Mol, ChemError> {
        let rings = m
            .symmetrized_sssr()
            .map_err(|e| ChemError::InvalidSmiles(format!("ring perception failed: {e}")))?;
        let ring_atoms: Vec<Vec<usize>> = rings
            .atom_rings()
            .iter()
            .map(|r| r.iter().map(|a| a.index()).collect())
            .collect();
        let mut bond_in_ring = vec![false; m.num_bonds()];
        for r in rings.bond_rings() {
            for b in r {
                bond_in_ring[b.index()] = true;
            }
        }
        let mut atom_in_ring = vec![false; m.num_atoms()];
        for r in &ring_atoms {
            for &a in r {
                atom_in_ring[a] = true;
            }
        }
        let mut atoms = Vec::with_capacity(m.num_atoms());
        for (i, a) in m.atoms().iter().enumerate() {
            let total_h = a
                .total_hydrogens()
                .map_err(|e| ChemError::InvalidSmiles(format!("atom {i}: hydrogen count: {e}")))?;
            let element = a.element();
            let isotope = a.isotope();
            let mass = cosmolkit_core::atomic_mass(element, isotope).map_err(|e| {
                ChemError::InvalidSmiles(format!("atom {i}: mass of {}: {e}", element.symbol()))
            })?;
            atoms.push(Atom {
                atomic_number: a.atomic_number(),
                symbol: element.symbol(),
                degree: u8::try_from(a.degree()).unwrap_or(u8::MAX),
                total_h: u8::try_from(total_h.max(0)).unwrap_or(u8::MAX),
                formal_charge: a.formal_charge(),
                chiral_tag: a.chiral_tag().rdkit_code() as u8,
                hybridization: a.hybridization().rdkit_code() as u8,
                aromatic: a.is_aromatic(),
                mass,
                isotope,
                in_ring: atom_in_ring[i],
            });
        }
        let mut bonds = Vec::with_capacity(m.num_bonds());
        let mut adjacency = vec![Vec::new(); atoms.len()];
        for (j, b) in m.bonds().iter().enumerate() {
            let kind = if b.is_aromatic() {
                BondKind::Aromatic
            } else {
                match b.order() {
                    BondOrder::Single => BondKind::Single,
                    BondOrder::Double => BondKind::Double,
                    BondOrder::Triple => BondKind::Triple,
                    BondOrder::Aromatic => BondKind::Aromatic,
                    _ => BondKind::Other,
                }
            };
            let (u, v) = (b.begin().index(), b.end().index());
            adjacency[u].push((v, j));
            adjacency[v].push((u, j));
            bonds.push(Bond {
                begin: u,
                end: v,
                kind,
                conjugated: b.is_conjugated(),
                in_ring: bond_in_ring[j],
                stereo: b.stereo().rdkit_code() as u8,
            });
        }
        Ok(Mol {
            atoms,
            bonds,
            rings: ring_atoms,
            adjacency,
        })
    }

    /// Heavy atoms (atomic number > 1).
    pub fn heavy_atoms(&self) -> usize {
        self.atoms.iter().filter(|a| a.atomic_number > 1).count()
    }

    /// Aromatic atoms.
    pub fn aromatic_atoms(&self) -> usize {
        self.atoms.iter().filter(|a| a.aromatic).count()
    }

    /// Sum of formal charges.
    pub fn net_charge(&self) -> i32 {
        self.atoms.iter().map(|a| a.formal_charge as i32).sum()
    }

    /// Hydrogens in total (explicit atoms not counted; RDKit's sum of `GetTotalNumHs`).
    pub fn total_h(&self) -> u32 {
        self.atoms.iter().map(|a| a.total_h as u32).sum()
    }

    /// Canonical SMILES (RDKit's canonical form; stereo kept when `isomeric`).
    pub fn canonical_smiles(smiles: &str, isomeric: bool) -> Result<String, ChemError> {
        let m =
            CkMolecule::from_smiles(smiles).map_err(|e| ChemError::InvalidSmiles(e.to_string()))?;
        let params = cosmolkit::SmilesWriteParams {
            isomeric_smiles: isomeric,
            ..Default::default()
        };
        m.to_smiles_with_params(&params)
            .map(|t| String::from_utf8_lossy(&t.into_bytes()).into_owned())
            .map_err(|e| ChemError::InvalidSmiles(format!("writing SMILES: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn benzene_from_kekule_is_aromatic_with_six_hydrogens() {
        let m = Mol::from_smiles("C1=CC=CC=C1").unwrap();
        assert_eq!(m.heavy_atoms(), 6);
        assert_eq!(m.aromatic_atoms(), 6);
        assert_eq!(m.total_h(), 6);
        assert_eq!(m.rings.len(), 1);
        assert!(
            m.bonds
                .iter()
                .all(|b| b.kind == BondKind::Aromatic && b.in_ring)
        );
        assert!(m.atoms.iter().all(|a| a.hybridization == 3));
    }

    #[test]
    fn salts_charges_isotopes_and_ring_closures() {
        let m = Mol::from_smiles("[Na+].[O-]C(=O)C%12CC%12[13CH3]").unwrap();
        assert_eq!(m.net_charge(), 0);
        assert_eq!(m.heavy_atoms(), 8);
        assert_eq!(m.rings.len(), 1);
        let c13 = m.atoms.iter().find(|a| a.isotope == Some(13)).unwrap();
        assert!((c13.mass - 13.003).abs() < 1e-2);
        assert_eq!(c13.total_h, 3);
    }

    #[test]
    fn rejects_what_rdkit_rejects() {
        for bad in ["", "C1CC", "c1cccc1", "CN(C)(C)(C)C", "C(", "Xx"] {
            assert!(Mol::from_smiles(bad).is_err(), "{bad:?} should be invalid");
        }
    }
}
