//! Text classification data, without a deep-learning engine.
//!
//! - [`dataset`]: CSV/TSV tables of texts with one label or several (`C04;C14`) per row and an
//!   optional split column ([`TextDataset`], [`TextRecord`], [`SplitName`]); the sorted label set
//!   of the training split ([`LabelSet`]), which names any later label it does not know.
//! - [`vocab`]: a word vocabulary for RNN classifiers ([`WordVocab`]): alphanumeric words,
//!   lower-cased, numbers folded into `<num>`, rare words cut, deterministic ids.
//! - [`wordpiece`]: BERT WordPiece tokenisation ([`WordPiece`]) from a model directory
//!   (`tokenizer.json`, or `vocab.txt` + `tokenizer_config.json`), storable as JSON in a bundle.
//! - [`vectors`]: GloVe / word2vec text vectors as an embedding matrix for a [`WordVocab`].
//! - [`Tokenizer`], [`Encoded`], [`pad_batch`]: one encoding interface over both tokenizers
//!   (ids, type ids, display tokens and byte spans in the original text, for attention maps)
//!   and padding to a `[batch, len]` batch with a mask.
//!
//! Errors ([`TextError`]) name the file and the line and column involved; no input makes the
//! crate panic.
//!
//! WordPiece is Hugging Face's `tokenizers` crate (the Rust core of the Python library), built
//! without default features: no Oniguruma or other C code (the pure-Rust `fancy-regex` backend
//! instead), no progress bar, and no `http` feature, so nothing is downloaded at run time. A
//! BERT checkpoint is only as good as the ids it is fed, and reusing the implementation that
//! produced them is the sure way to match: `tests/wordpiece_oracle.rs` compares ids, type ids
//! and offsets with Python's `tokenizers` on OHSUMED abstracts and awkward strings (accents,
//! CJK, control characters, literal special tokens, over-long words). The reader, the word
//! vocabulary and the vectors are small enough to own.

#![warn(missing_docs)]

pub mod dataset;
pub mod error;
pub mod vectors;
pub mod vocab;
pub mod wordpiece;

pub use dataset::{LabelSet, ReadOptions, SplitName, TextDataset, TextRecord};
pub use error::TextError;
pub use vectors::{WordVectors, read_word_vectors};
pub use vocab::{VocabOptions, WordVocab};
pub use wordpiece::WordPiece;

use serde::{Deserialize, Serialize};

/// One text as token ids, with what is needed to show and explain them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encoded {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Segment (token type) ids; all 0 for single texts.
    pub type_ids: Vec<u32>,
    /// Display form of each id (the vocabulary's token).
    pub tokens: Vec<String>,
    /// Byte span `(start, end)` of each token in the original text; `None` for special tokens
    /// such as `[CLS]` and `[SEP]`.
    pub spans: Vec<Option<(usize, usize)>>,
}

impl Encoded {
    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Keep the first `len` tokens.
    pub fn truncate(&mut self, len: usize) {
        self.ids.truncate(len);
        self.type_ids.truncate(len);
        self.tokens.truncate(len);
        self.spans.truncate(len);
    }
}

/// Either tokenizer, behind one interface.
#[derive(Clone, Debug)]
pub enum Tokenizer {
    /// Word ids from a [`WordVocab`] (RNN classifiers).
    Word(WordVocab),
    /// BERT WordPiece.
    WordPiece(WordPiece),
}

impl Tokenizer {
    /// Encode `text` into at most `max_len` tokens.
    ///
    /// `Word`: the ids of the text's words, the first `max_len` of them, no special tokens.
    /// `WordPiece`: `[CLS] pieces [SEP]`, pieces cut from the end so the total is at most
    /// `max_len` and `[SEP]` stays (with `max_len` < 2, the first `max_len` of `[CLS] [SEP]`).
    pub fn encode(&self, text: &str, max_len: usize) -> Encoded {
        match self {
            Tokenizer::Word(vocab) => {
                let mut out = Encoded::default();
                for (word, span) in vocab.words(text).into_iter().take(max_len) {
                    let id = vocab.lookup(&word).unwrap_or(vocab::UNK_ID);
                    out.ids.push(id);
                    out.type_ids.push(0);
                    out.tokens.push(
                        vocab
                            .tokens
                            .get(id as usize)
                            .cloned()
                            .unwrap_or_else(|| vocab::UNK.to_string()),
                    );
                    out.spans.push(Some(span));
                }
                out
            }
            Tokenizer::WordPiece(wp) => wp.encode(text, max_len),
        }
    }

    /// The id that pads a batch (`<pad>` = 0 for words, `[PAD]` for WordPiece).
    pub fn pad_id(&self) -> u32 {
        match self {
            Tokenizer::Word(_) => vocab::PAD_ID,
            Tokenizer::WordPiece(wp) => wp.pad_id(),
        }
    }

    /// Number of ids (the embedding table's rows).
    pub fn vocab_size(&self) -> usize {
        match self {
            Tokenizer::Word(v) => v.len(),
            Tokenizer::WordPiece(wp) => wp.vocab_size(),
        }
    }
}

/// A padded batch, row-major `[batch, len]`, ready to become tensors.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PaddedBatch {
    /// Token ids, padded with the pad id.
    pub ids: Vec<i64>,
    /// Segment ids, padded with 0.
    pub type_ids: Vec<i64>,
    /// 1.0 at real tokens, 0.0 at padding.
    pub mask: Vec<f32>,
    /// Number of rows.
    pub batch: usize,
    /// Row length.
    pub len: usize,
}

/// Pad `items` to a common length: the longest item, at least `min_len`, at least 1.
///
/// An empty item becomes a row of padding whose mask is all zero (the only case of an all-zero
/// mask row); consumers that normalise over the mask should guard against it.
pub fn pad_batch(items: &[&Encoded], pad_id: u32, min_len: usize) -> PaddedBatch {
    let len = items
        .iter()
        .map(|e| e.ids.len())
        .max()
        .unwrap_or(0)
        .max(min_len)
        .max(1);
    let batch = items.len();
    let mut out = PaddedBatch {
        ids: vec![i64::from(pad_id); batch * len],
        type_ids: vec![0; batch * len],
        mask: vec![0.0; batch * len],
        batch,
        len,
    };
    for (row, item) in items.iter().enumerate() {
        let base = row * len;
        for (j, &id) in item.ids.iter().enumerate() {
            out.ids[base + j] = i64::from(id);
            out.type_ids[base + j] = i64::from(item.type_ids.get(j).copied().unwrap_or(0));
            out.mask[base + j] = 1.0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(ids: &[u32]) -> Encoded {
        Encoded {
            ids: ids.to_vec(),
            type_ids: vec![0; ids.len()],
            tokens: ids.iter().map(|i| i.to_string()).collect(),
            spans: vec![None; ids.len()],
        }
    }

    #[test]
    fn pads_to_longest_and_min_len() {
        let (a, b, empty) = (enc(&[5, 6, 7]), enc(&[8]), enc(&[]));
        let batch = pad_batch(&[&a, &b, &empty], 9, 2);
        assert_eq!((batch.batch, batch.len), (3, 3));
        assert_eq!(batch.ids, [5, 6, 7, 8, 9, 9, 9, 9, 9]);
        assert_eq!(batch.mask, [1., 1., 1., 1., 0., 0., 0., 0., 0.]);
        assert_eq!(batch.type_ids, [0; 9]);
        let wide = pad_batch(&[&b], 0, 4);
        assert_eq!((wide.len, wide.ids.clone()), (4, vec![8, 0, 0, 0]));
        let one = pad_batch(&[&empty], 3, 0);
        assert_eq!((one.len, one.ids, one.mask), (1, vec![3], vec![0.0]));
        let none = pad_batch(&[], 0, 0);
        assert_eq!((none.batch, none.len, none.ids.len()), (0, 1, 0));
    }

    #[test]
    fn word_tokenizer_truncates_and_spans() {
        let vocab = WordVocab::build(
            ["The cat sat.", "the cat ran"],
            &VocabOptions {
                min_freq: 1,
                ..Default::default()
            },
        );
        let tok = Tokenizer::Word(vocab);
        let e = tok.encode("The dog sat", 2);
        assert_eq!(e.tokens, ["the", "<unk>"]);
        assert_eq!(e.spans, [Some((0, 3)), Some((4, 7))]);
        assert_eq!(tok.pad_id(), 0);
        assert!(tok.encode("", 5).is_empty());
    }
}
