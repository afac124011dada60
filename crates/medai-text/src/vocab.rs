//! A word-level vocabulary for RNN and embedding-bag classifiers.
//!
//! Words are maximal runs of Unicode alphanumeric characters; punctuation and whitespace
//! separate words and are dropped. Each word is normalised (lower-cased, and any word containing
//! a digit replaced by `<num>`, as the options say) before it is counted or looked up. Id 0 is
//! `<pad>`, id 1 `<unk>`; the rest are ordered by frequency (descending), ties by the word, so
//! the same texts always give the same ids.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The padding token (id 0).
pub const PAD: &str = "<pad>";
/// The unknown-word token (id 1).
pub const UNK: &str = "<unk>";
/// What a word containing a digit becomes when numbers are normalised.
pub const NUM: &str = "<num>";
/// Id of [`PAD`].
pub const PAD_ID: u32 = 0;
/// Id of [`UNK`].
pub const UNK_ID: u32 = 1;

/// How a [`WordVocab`] is built and how words are normalised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VocabOptions {
    /// Words seen fewer times than this are left out (map to `<unk>`). Default 2.
    pub min_freq: usize,
    /// The most tokens the vocabulary holds, `<pad>` and `<unk>` included. Default 50 000.
    pub max_size: Option<usize>,
    /// Lower-case words. Default true.
    pub lowercase: bool,
    /// Replace any word containing a digit (any Unicode numeric character) by `<num>`.
    /// Default true.
    pub normalize_numbers: bool,
}

impl Default for VocabOptions {
    fn default() -> Self {
        VocabOptions {
            min_freq: 2,
            max_size: Some(50_000),
            lowercase: true,
            normalize_numbers: true,
        }
    }
}

/// Raw serialised form; deserialising goes through it to rebuild the lookup table.
#[derive(Deserialize)]
struct WordVocabData {
    #[serde(default)]
    options: VocabOptions,
    tokens: Vec<String>,
}

/// A word vocabulary: `tokens[id]` is the word with that id.
///
/// Make one with [`WordVocab::build`], [`WordVocab::from_tokens`] or serde; lookups use an
/// index built then (if `tokens` is edited afterwards they fall back to a scan).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "WordVocabData")]
pub struct WordVocab {
    /// The options it was built with (they also normalise words at lookup).
    pub options: VocabOptions,
    /// The tokens by id: `<pad>`, `<unk>`, then words by (frequency desc, word asc).
    pub tokens: Vec<String>,
    /// Word → id.
    #[serde(skip)]
    index: HashMap<String, u32>,
}

impl From<WordVocabData> for WordVocab {
    fn from(d: WordVocabData) -> Self {
        WordVocab::from_tokens(d.tokens, d.options)
    }
}

impl WordVocab {
    /// Count the words of `texts` and keep those seen at least `min_freq` times, most frequent
    /// first, up to `max_size` tokens in all.
    pub fn build<'a>(texts: impl IntoIterator<Item = &'a str>, opts: &VocabOptions) -> Self {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for text in texts {
            for_each_word(text, opts, |w, _| *counts.entry(w).or_insert(0) += 1);
        }
        let mut words: Vec<(String, usize)> = counts
            .into_iter()
            .filter(|(_, c)| *c >= opts.min_freq.max(1))
            .collect();
        words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let room = opts.max_size.map_or(usize::MAX, |m| m.saturating_sub(2));
        let tokens = [PAD.to_string(), UNK.to_string()]
            .into_iter()
            .chain(words.into_iter().take(room).map(|(w, _)| w))
            .collect();
        WordVocab::from_tokens(tokens, opts.clone())
    }

    /// A vocabulary from its token list (as stored), e.g. to restore one from a bundle. The
    /// first occurrence of a repeated token keeps its id.
    pub fn from_tokens(tokens: Vec<String>, options: VocabOptions) -> Self {
        let mut index = HashMap::with_capacity(tokens.len());
        for (i, t) in tokens.iter().enumerate() {
            index.entry(t.clone()).or_insert(i as u32);
        }
        WordVocab {
            options,
            tokens,
            index,
        }
    }

    /// The normalised words of `text` with their byte spans `(start, end)` in `text`.
    pub fn words(&self, text: &str) -> Vec<(String, (usize, usize))> {
        let mut out = Vec::new();
        for_each_word(text, &self.options, |w, span| out.push((w, span)));
        out
    }

    /// The id of a word after normalisation; `<unk>`'s id (1) when it is not in the vocabulary.
    pub fn id(&self, word: &str) -> u32 {
        let w = normalize(word, &self.options);
        self.lookup(&w).unwrap_or(UNK_ID)
    }

    /// The id of an exact token (no normalisation), if present.
    pub fn lookup(&self, token: &str) -> Option<u32> {
        match self.index.get(token) {
            Some(&id) if self.tokens.get(id as usize).is_some_and(|t| t == token) => Some(id),
            _ if self.index.len() == self.tokens.len() => None,
            // `tokens` was edited after construction: fall back to a scan.
            _ => self
                .tokens
                .iter()
                .position(|t| t == token)
                .map(|i| i as u32),
        }
    }

    /// The ids of the words of `text`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.words(text)
            .into_iter()
            .map(|(w, _)| self.lookup(&w).unwrap_or(UNK_ID))
            .collect()
    }

    /// Number of tokens, `<pad>` and `<unk>` included.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// True when there are no tokens at all (never for a built vocabulary).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// A word as the options normalise it.
fn normalize(word: &str, opts: &VocabOptions) -> String {
    if opts.normalize_numbers && word.chars().any(|c| c.is_numeric()) {
        NUM.to_string()
    } else if opts.lowercase {
        word.to_lowercase()
    } else {
        word.to_string()
    }
}

/// Calls `f(normalised word, byte span)` for each maximal alphanumeric run of `text`.
fn for_each_word(text: &str, opts: &VocabOptions, mut f: impl FnMut(String, (usize, usize))) {
    let mut start: Option<usize> = None;
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                f(normalize(&text[s..i], opts), (s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        f(normalize(&text[s..], opts), (s, text.len()));
    }
}
