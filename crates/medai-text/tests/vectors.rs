//! Word vectors: GloVe (no header) and word2vec text (header `N D`), lower-case lookup, and
//! errors naming the line.

use medai_text::{TextError, VocabOptions, WordVocab, read_word_vectors};
use std::path::{Path, PathBuf};

fn vocab() -> WordVocab {
    WordVocab::build(
        ["the heart the lung heart lung fever"],
        &VocabOptions {
            min_freq: 1,
            ..VocabOptions::default()
        },
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn row<'a>(v: &'a medai_text::WordVectors, vocab: &WordVocab, word: &str) -> &'a [f32] {
    let id = vocab.id(word) as usize;
    &v.matrix[id * v.dim..(id + 1) * v.dim]
}

#[test]
fn glove_without_header() {
    let dir = tempfile::tempdir().unwrap();
    let vocab = vocab();
    let p = write(
        dir.path(),
        "glove.txt",
        "the 0.1 0.2 0.3\nheart -1 2.5e-1 3\n\nunrelated 9 9 9\nlung 1 1 1 \r\n",
    );
    let v = read_word_vectors(&p, &vocab).unwrap();
    assert_eq!(v.dim, 3);
    assert_eq!(v.matrix.len(), vocab.len() * 3);
    assert_eq!(v.found, 3);
    assert_eq!(row(&v, &vocab, "heart"), [-1.0, 0.25, 3.0]);
    assert_eq!(row(&v, &vocab, "lung"), [1.0, 1.0, 1.0]);
    assert_eq!(row(&v, &vocab, "fever"), [0.0; 3]);
    assert_eq!(&v.matrix[..3], [0.0; 3], "<pad> stays zero");
}

#[test]
fn word2vec_header_and_lowercase_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let vocab = vocab();
    let p = write(
        dir.path(),
        "w2v.txt",
        "4 2\nHeart 1 2\nheart 3 4\nFEVER 5 6\nThe 7 8\n",
    );
    let v = read_word_vectors(&p, &vocab).unwrap();
    assert_eq!(v.dim, 2);
    assert_eq!(v.found, 3);
    assert_eq!(row(&v, &vocab, "heart"), [1.0, 2.0], "first vector wins");
    assert_eq!(row(&v, &vocab, "fever"), [5.0, 6.0]);
    // A cased vocabulary looks words up as written.
    let cased = WordVocab::build(
        ["Heart heart"],
        &VocabOptions {
            min_freq: 1,
            lowercase: false,
            ..VocabOptions::default()
        },
    );
    let v = read_word_vectors(&p, &cased).unwrap();
    assert_eq!(v.found, 2);
    assert_eq!(row(&v, &cased, "heart"), [3.0, 4.0]);
}

#[test]
fn errors_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let vocab = vocab();
    let p = write(dir.path(), "dim.txt", "the 1 2 3\nheart 1 2 3\nlung 1 2\n");
    let e = read_word_vectors(&p, &vocab).unwrap_err();
    assert!(matches!(e, TextError::Vectors { line: 3, .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("dim.txt") && msg.contains("line 3") && msg.contains("dimension"),
        "{msg}"
    );

    let p = write(dir.path(), "hdr.txt", "3 4\nthe 1 2 3\n");
    let e = read_word_vectors(&p, &vocab).unwrap_err();
    assert!(
        e.to_string().contains("line 2") && e.to_string().contains("expected 4"),
        "{e}"
    );

    let p = write(dir.path(), "nan.txt", "the 1 2\nheart 1 x2\n");
    let e = read_word_vectors(&p, &vocab).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("line 2") && msg.contains("\"x2\"") && msg.contains("value 2"),
        "{msg}"
    );

    let p = write(dir.path(), "empty.txt", "\n\n");
    assert!(matches!(
        read_word_vectors(&p, &vocab).unwrap_err(),
        TextError::Empty { .. }
    ));
    let p = write(dir.path(), "novalues.txt", "the\n");
    assert!(
        read_word_vectors(&p, &vocab)
            .unwrap_err()
            .to_string()
            .contains("line 1")
    );
    let missing = dir.path().join("missing.txt");
    assert!(matches!(
        read_word_vectors(&missing, &vocab).unwrap_err(),
        TextError::Io { .. }
    ));
}
