//! Pretrained word vectors in text form, to initialise an embedding layer.
//!
//! Reads GloVe files (`word v1 … vD` per line, no header) and word2vec text files (the same
//! after a first line `N D`). Each word of the file is looked up in a [`WordVocab`]
//! (lower-cased first when the vocabulary lower-cases); the first vector found for a token
//! fills its row. Rows of tokens without a vector, and `<pad>`'s row, are zero.

use crate::vocab::PAD_ID;
use crate::{TextError, WordVocab};
use std::io::BufRead;
use std::path::Path;

/// An embedding matrix for a vocabulary.
#[derive(Clone, Debug, PartialEq)]
pub struct WordVectors {
    /// Vector length.
    pub dim: usize,
    /// Row-major `[vocab.len(), dim]`; rows of tokens not found in the file are zero.
    pub matrix: Vec<f32>,
    /// How many vocabulary tokens got a vector.
    pub found: usize,
}

/// Read the vectors of `path` for the tokens of `vocab`.
///
/// Errors name the line: a line whose number of values differs from the first vector's (or from
/// the word2vec header's `D`), a value that is not a number, non-UTF-8 text, or a file with no
/// vectors.
pub fn read_word_vectors(path: &Path, vocab: &WordVocab) -> Result<WordVectors, TextError> {
    let file = std::fs::File::open(path).map_err(|e| TextError::io(path, e))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let err = |line: u64, message: String| TextError::Vectors {
        path: path.into(),
        line,
        message,
    };
    let mut dim: Option<usize> = None;
    let mut matrix: Vec<f32> = Vec::new();
    let mut filled = vec![false; vocab.len()];
    let mut found = 0;
    let mut buf = Vec::new();
    let mut values: Vec<f32> = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| TextError::io(path, e))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let line = std::str::from_utf8(&buf).map_err(|e| {
            err(
                line_no,
                format!("not valid UTF-8 at byte {}", e.valid_up_to()),
            )
        })?;
        let mut fields = line
            .trim_end_matches(['\n', '\r'])
            .split([' ', '\t'])
            .filter(|f| !f.is_empty());
        let Some(word) = fields.next() else {
            continue; // blank line
        };
        let rest: Vec<&str> = fields.collect();
        if line_no == 1 && rest.len() == 1 {
            // A word2vec header `N D`.
            if let (Ok(_), Ok(d)) = (word.parse::<usize>(), rest[0].parse::<usize>()) {
                if d == 0 {
                    return Err(err(1, "word2vec header gives dimension 0".into()));
                }
                dim = Some(d);
                continue;
            }
        }
        let d = *dim.get_or_insert(rest.len());
        if d == 0 {
            return Err(err(line_no, format!("word {word:?} has no values")));
        }
        if rest.len() != d {
            return Err(err(
                line_no,
                format!(
                    "inconsistent dimension: word {word:?} has {} values, expected {d}",
                    rest.len()
                ),
            ));
        }
        values.clear();
        for (i, v) in rest.iter().enumerate() {
            let x: f32 = v.parse().map_err(|_| {
                err(
                    line_no,
                    format!("value {} of word {word:?} is not a number: {v:?}", i + 1),
                )
            })?;
            values.push(x);
        }
        if matrix.is_empty() {
            matrix = vec![0.0; vocab.len() * d];
        }
        let key = if vocab.options.lowercase {
            word.to_lowercase()
        } else {
            word.to_string()
        };
        if let Some(id) = vocab.lookup(&key) {
            let row = id as usize;
            if id != PAD_ID && !filled[row] {
                filled[row] = true;
                found += 1;
                matrix[row * d..(row + 1) * d].copy_from_slice(&values);
            }
        }
    }
    let Some(dim) = dim else {
        return Err(TextError::Empty {
            path: path.into(),
            what: "no word vectors in the file".into(),
        });
    };
    if matrix.is_empty() {
        matrix = vec![0.0; vocab.len() * dim];
    }
    Ok(WordVectors { dim, matrix, found })
}
