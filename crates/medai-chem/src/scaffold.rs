//! Bemis–Murcko scaffolds, as RDKit's `MurckoScaffold.MurckoScaffoldSmiles(includeChirality=False)`:
//! the ring systems and the linkers between them, plus atoms double-bonded to those; side
//! chains are cut and the cut atoms get the hydrogens of the lost bonds. An acyclic molecule's
//! scaffold is the empty string. Scaffolds are compared as canonical SMILES.

use crate::mol::BondKind;
use crate::{ChemError, Mol};

/// Which atoms of `mol` belong to its Murcko scaffold.
pub fn scaffold_atoms(mol: &Mol) -> Vec<bool> {
    let n = mol.atoms.len();
    let mut keep = vec![true; n];
    let mut degree: Vec<usize> = mol.adjacency.iter().map(|a| a.len()).collect();
    // Prune non-ring atoms of degree ≤ 1 until none is left: what remains is rings + linkers.
    let mut stack: Vec<usize> = (0..n)
        .filter(|&i| !mol.atoms[i].in_ring && degree[i] <= 1)
        .collect();
    while let Some(i) = stack.pop() {
        if !keep[i] {
            continue;
        }
        keep[i] = false;
        for &(j, _) in &mol.adjacency[i] {
            if keep[j] {
                degree[j] -= 1;
                if !mol.atoms[j].in_ring && degree[j] <= 1 {
                    stack.push(j);
                }
            }
        }
    }
    if !keep.iter().any(|&k| k) {
        return keep;
    }
    // Atoms double-bonded to a ring or linker atom stay (C=O of a ring ketone or amide linker).
    let core = keep.clone();
    for b in &mol.bonds {
        if b.kind == BondKind::Double {
            if core[b.begin] && !core[b.end] {
                keep[b.end] = true;
            } else if core[b.end] && !core[b.begin] {
                keep[b.begin] = true;
            }
        }
    }
    keep
}

/// The Murcko scaffold of `mol` as canonical SMILES without stereo (`""` when acyclic).
pub fn murcko_scaffold(mol: &Mol) -> Result<String, ChemError> {
    let keep = scaffold_atoms(mol);
    if !keep.iter().any(|&k| k) {
        return Ok(String::new());
    }
    let smiles = write_subgraph(mol, &keep);
    Mol::canonical_smiles(&smiles, false)
        .map_err(|e| ChemError::InvalidSmiles(format!("scaffold {smiles:?}: {e}")))
}

/// A (non-canonical) SMILES of the atoms `keep` of `mol`: bracket atoms with explicit hydrogen
/// counts, where each kept atom takes over the bond orders of its cut neighbours as hydrogens.
fn write_subgraph(mol: &Mol, keep: &[bool]) -> String {
    let n = mol.atoms.len();
    // Pass 1: DFS tree and ring-closure bonds, in a fixed order.
    let mut order = Vec::new();
    let mut parent_bond = vec![usize::MAX; n];
    let mut visited = vec![false; n];
    let mut children: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    let mut closures: Vec<(usize, usize, usize)> = Vec::new(); // (opener, closer, bond)
    let mut roots = Vec::new();
    let mut tree_bond = vec![false; mol.bonds.len()];
    for start in 0..n {
        if !keep[start] || visited[start] {
            continue;
        }
        roots.push(start);
        let mut stack = vec![start];
        // Iterative DFS with explicit neighbour cursors so the preorder is deterministic.
        let mut cursor = vec![0usize; n];
        visited[start] = true;
        order.push(start);
        while let Some(&u) = stack.last() {
            let nbrs = &mol.adjacency[u];
            if cursor[u] < nbrs.len() {
                let (v, b) = nbrs[cursor[u]];
                cursor[u] += 1;
                if !keep[v] || b == parent_bond[u] {
                    continue;
                }
                if !visited[v] {
                    visited[v] = true;
                    parent_bond[v] = b;
                    tree_bond[b] = true;
                    children[u].push((v, b));
                    order.push(v);
                    stack.push(v);
                }
            } else {
                stack.pop();
            }
        }
    }
    let rank: Vec<usize> = {
        let mut r = vec![usize::MAX; n];
        for (k, &a) in order.iter().enumerate() {
            r[a] = k;
        }
        r
    };
    for (j, b) in mol.bonds.iter().enumerate() {
        if keep[b.begin] && keep[b.end] && !tree_bond[j] {
            let (o, c) = if rank[b.begin] < rank[b.end] {
                (b.begin, b.end)
            } else {
                (b.end, b.begin)
            };
            closures.push((o, c, j));
        }
    }
    // Pass 2: emit.
    let mut out = String::new();
    let mut digit_of_bond = vec![0usize; mol.bonds.len()];
    let mut free_digits: Vec<usize> = (1..100).rev().collect();
    for (k, &root) in roots.iter().enumerate() {
        if k > 0 {
            out.push('.');
        }
        emit(
            mol,
            keep,
            root,
            &children,
            &closures,
            &mut digit_of_bond,
            &mut free_digits,
            &mut out,
        );
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn emit(
    mol: &Mol,
    keep: &[bool],
    u: usize,
    children: &[Vec<(usize, usize)>],
    closures: &[(usize, usize, usize)],
    digit_of_bond: &mut [usize],
    free_digits: &mut Vec<usize>,
    out: &mut String,
) {
    write_atom(mol, keep, u, out);
    // Closers first (release digits), then openers, as a SMILES writer must.
    for &(_, _, b) in closures.iter().filter(|(_, c, _)| *c == u) {
        let d = digit_of_bond[b];
        write_digit(d, out);
        free_digits.push(d);
        free_digits.sort_unstable_by(|a, b| b.cmp(a));
    }
    for &(o, c, b) in closures.iter().filter(|(o, _, _)| *o == u) {
        let d = free_digits.pop().unwrap_or(99);
        digit_of_bond[b] = d;
        out.push_str(bond_symbol(mol, b, o, c));
        write_digit(d, out);
    }
    let kids = &children[u];
    for (k, &(v, b)) in kids.iter().enumerate() {
        let last = k + 1 == kids.len();
        if !last {
            out.push('(');
        }
        out.push_str(bond_symbol(mol, b, u, v));
        emit(
            mol,
            keep,
            v,
            children,
            closures,
            digit_of_bond,
            free_digits,
            out,
        );
        if !last {
            out.push(')');
        }
    }
}

fn write_digit(d: usize, out: &mut String) {
    if d < 10 {
        out.push_str(&d.to_string());
    } else {
        out.push_str(&format!("%{d}"));
    }
}

fn bond_symbol(mol: &Mol, b: usize, u: usize, v: usize) -> &'static str {
    match mol.bonds[b].kind {
        BondKind::Double => "=",
        BondKind::Triple => "#",
        BondKind::Aromatic => ":",
        _ => {
            if mol.atoms[u].aromatic && mol.atoms[v].aromatic {
                "-"
            } else {
                ""
            }
        }
    }
}

fn write_atom(mol: &Mol, keep: &[bool], i: usize, out: &mut String) {
    let a = &mol.atoms[i];
    let gained: u32 = mol.adjacency[i]
        .iter()
        .filter(|(j, _)| !keep[*j])
        .map(|&(_, b)| mol.bonds[b].kind.valence() as u32)
        .sum();
    let h = a.total_h as u32 + gained;
    out.push('[');
    if a.atomic_number == 0 {
        out.push('*');
    } else if a.aromatic {
        out.push_str(&a.symbol.to_ascii_lowercase());
    } else {
        out.push_str(a.symbol);
    }
    match h {
        0 => {}
        1 => out.push('H'),
        _ => out.push_str(&format!("H{h}")),
    }
    match a.formal_charge {
        0 => {}
        1 => out.push('+'),
        -1 => out.push('-'),
        c if c > 0 => out.push_str(&format!("+{c}")),
        c => out.push_str(&format!("-{}", -(c as i32))),
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scaffold(s: &str) -> String {
        murcko_scaffold(&Mol::from_smiles(s).unwrap()).unwrap()
    }

    #[test]
    fn matches_rdkit_on_textbook_cases() {
        // Expected values printed by RDKit 2026.09's MurckoScaffoldSmiles.
        assert_eq!(scaffold("O=C1CCCCC1"), "O=C1CCCCC1");
        assert_eq!(scaffold("CC(=O)c1ccccc1"), "c1ccccc1");
        assert_eq!(scaffold("Cn1cccc1"), "c1cc[nH]c1");
        assert_eq!(scaffold("c1ccccc1CCc1ccccc1"), "c1ccc(CCc2ccccc2)cc1");
        assert_eq!(scaffold("CCO"), "");
        assert_eq!(scaffold("O=S(=O)(c1ccccc1)N"), "c1ccccc1");
        assert_eq!(scaffold("c1ccccc1C(=O)Nc1ccccc1"), "O=C(Nc1ccccc1)c1ccccc1");
        assert_eq!(scaffold("CC(=C)c1ccccc1"), "c1ccccc1");
        assert_eq!(scaffold("N#CC1CC1"), "C1CC1");
    }
}
