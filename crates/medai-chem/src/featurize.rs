//! Atom and bond features, as chemprop 2's defaults (`MultiHotAtomFeaturizer.v2()` and
//! `MultiHotBondFeaturizer()`), and the directed-bond graph a D-MPNN passes messages on.
//!
//! Atom (72 values): one-hot atomic number (1–36, 53, other), total degree (0–5, other), formal
//! charge (−1, −2, 1, 2, 0, other), chiral tag (0–3, other), total hydrogens (0–4, other),
//! hybridisation (S, SP, SP2, SP2D, SP3, SP3D, SP3D2, other), aromatic, mass / 100.
//!
//! Bond (14 values): a "no bond" bit (always 0 here), bond type (single, double, triple,
//! aromatic; none set for other types), conjugated, in ring, stereo (0–5, other).

use crate::Mol;
use crate::mol::BondKind;

/// Atomic numbers with their own bit.
const ATOMIC_NUMS: [u8; 37] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
    27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 53,
];
const FORMAL_CHARGES: [i8; 5] = [-1, -2, 1, 2, 0];
/// RDKit hybridisation codes, in chemprop's v2 order: S, SP, SP2, SP2D, SP3, SP3D, SP3D2.
const HYBRIDIZATIONS: [u8; 7] = [1, 2, 3, 5, 4, 6, 7];

/// Length of an atom feature vector.
pub const ATOM_FDIM: usize = (ATOMIC_NUMS.len() + 1) + 7 + 6 + 5 + 6 + 8 + 1 + 1;
/// Length of a bond feature vector.
pub const BOND_FDIM: usize = 1 + 4 + 2 + 7;

fn one_hot<T: PartialEq>(out: &mut [f32], choices: &[T], value: T) {
    let i = choices
        .iter()
        .position(|c| *c == value)
        .unwrap_or(choices.len());
    out[i] = 1.0;
}

/// The features of atom `i` of `mol`, written into `out` (length [`ATOM_FDIM`], zeroed).
pub fn atom_features(mol: &Mol, i: usize, out: &mut [f32]) {
    let a = &mol.atoms[i];
    let mut o = 0;
    one_hot(&mut out[o..o + 38], &ATOMIC_NUMS, a.atomic_number);
    o += 38;
    let total_degree = a.degree as u32 + a.total_h as u32;
    one_hot(&mut out[o..o + 7], &[0u32, 1, 2, 3, 4, 5], total_degree);
    o += 7;
    one_hot(&mut out[o..o + 6], &FORMAL_CHARGES, a.formal_charge);
    o += 6;
    one_hot(&mut out[o..o + 5], &[0u8, 1, 2, 3], a.chiral_tag);
    o += 5;
    one_hot(&mut out[o..o + 6], &[0u8, 1, 2, 3, 4], a.total_h);
    o += 6;
    one_hot(&mut out[o..o + 8], &HYBRIDIZATIONS, a.hybridization);
    o += 8;
    out[o] = a.aromatic as u8 as f32;
    out[o + 1] = (0.01 * a.mass) as f32;
}

/// The features of bond `j` of `mol`, written into `out` (length [`BOND_FDIM`], zeroed).
pub fn bond_features(mol: &Mol, j: usize, out: &mut [f32]) {
    let b = &mol.bonds[j];
    match b.kind {
        BondKind::Single => out[1] = 1.0,
        BondKind::Double => out[2] = 1.0,
        BondKind::Triple => out[3] = 1.0,
        BondKind::Aromatic => out[4] = 1.0,
        BondKind::Other => {}
    }
    out[5] = b.conjugated as u8 as f32;
    out[6] = b.in_ring as u8 as f32;
    one_hot(&mut out[7..14], &[0u8, 1, 2, 3, 4, 5], b.stereo);
}

/// A molecule as a D-MPNN sees it: atom features and directed bonds (two per bond, `2k` and
/// `2k + 1` are each other's reverse).
#[derive(Clone, Debug, PartialEq)]
pub struct MolGraph {
    /// Number of atoms.
    pub n_atoms: usize,
    /// Atom features, `n_atoms × ATOM_FDIM`, row-major.
    pub atom_features: Vec<f32>,
    /// Source atom of each directed bond.
    pub src: Vec<u32>,
    /// Target atom of each directed bond.
    pub dst: Vec<u32>,
    /// Bond features of each directed bond, `2 × n_bonds × BOND_FDIM`.
    pub bond_features: Vec<f32>,
}

impl MolGraph {
    /// Featurise `mol`.
    pub fn new(mol: &Mol) -> MolGraph {
        let n = mol.atoms.len();
        let mut atom_feats = vec![0.0; n * ATOM_FDIM];
        for (i, row) in atom_feats.chunks_mut(ATOM_FDIM).enumerate() {
            atom_features(mol, i, row);
        }
        let m = mol.bonds.len();
        let mut src = Vec::with_capacity(2 * m);
        let mut dst = Vec::with_capacity(2 * m);
        let mut bond_feats = vec![0.0; 2 * m * BOND_FDIM];
        for (j, b) in mol.bonds.iter().enumerate() {
            src.extend([b.begin as u32, b.end as u32]);
            dst.extend([b.end as u32, b.begin as u32]);
            let (fwd, rev) =
                bond_feats[2 * j * BOND_FDIM..(2 * j + 2) * BOND_FDIM].split_at_mut(BOND_FDIM);
            bond_features(mol, j, fwd);
            rev.copy_from_slice(fwd);
        }
        MolGraph {
            n_atoms: n,
            atom_features: atom_feats,
            src,
            dst,
            bond_features: bond_feats,
        }
    }

    /// Number of directed bonds.
    pub fn n_edges(&self) -> usize {
        self.src.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_match_chemprop() {
        assert_eq!(ATOM_FDIM, 72);
        assert_eq!(BOND_FDIM, 14);
    }

    #[test]
    fn ethanol_features() {
        let g = MolGraph::new(&Mol::from_smiles("CCO").unwrap());
        assert_eq!(g.n_atoms, 3);
        assert_eq!(g.n_edges(), 4);
        assert_eq!(g.src, vec![0, 1, 1, 2]);
        assert_eq!(g.dst, vec![1, 0, 2, 1]);
        let o = &g.atom_features[2 * ATOM_FDIM..3 * ATOM_FDIM];
        // Oxygen (Z = 8) → bit 7; total degree 2 (1 neighbour + 1 H) → bit 38 + 2.
        assert_eq!(o[7], 1.0);
        assert_eq!(o[38 + 2], 1.0);
        // Formal charge 0 is the 5th choice; chiral tag 0; one H; SP3 is the 5th hybridisation.
        assert_eq!(o[45 + 4], 1.0);
        assert_eq!(o[51], 1.0);
        assert_eq!(o[56 + 1], 1.0);
        assert_eq!(o[62 + 4], 1.0);
        assert_eq!(o[70], 0.0);
        assert!((o[71] - 0.15999).abs() < 1e-4);
        assert_eq!(o.iter().filter(|&&v| v == 1.0).count(), 6);
        let b = &g.bond_features[0..BOND_FDIM];
        assert_eq!(b, &[0., 1., 0., 0., 0., 0., 0., 1., 0., 0., 0., 0., 0., 0.]);
    }
}
