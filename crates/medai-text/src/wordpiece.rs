//! BERT WordPiece tokenisation through the Rust core of Hugging Face `tokenizers`.
//!
//! A model directory holds either a `tokenizer.json` (the full pipeline, as `transformers` saves
//! it) or only a `vocab.txt` (one piece per line, the id is the line number) with an optional
//! `tokenizer_config.json`; from the latter we assemble the pipeline `BertTokenizerFast` would:
//! `BertNormalizer` (clean text, split CJK characters, lower-case and strip accents when
//! `do_lower_case`), `BertPreTokenizer` (whitespace and punctuation), `WordPiece` (`##`
//! continuation, `[UNK]`, words over 100 characters become `[UNK]`) and the `[CLS] x [SEP]`
//! post-processor, with the special tokens registered so that a literal `[SEP]` in the text is
//! one token. Nothing is ever downloaded.

use crate::{Encoded, TextError};
use std::path::{Path, PathBuf};
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordpiece::WordPiece as WordPieceModel;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{AddedToken, PaddingParams, PostProcessor, TruncationDirection};

/// A BERT WordPiece tokenizer (a `tokenizers::Tokenizer` with truncation and padding switched
/// off: [`crate::Tokenizer::encode`] truncates, [`crate::pad_batch`] pads).
#[derive(Clone)]
pub struct WordPiece {
    inner: Box<tokenizers::Tokenizer>,
    /// Id and token used for padding.
    pad: (u32, String),
}

impl std::fmt::Debug for WordPiece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WordPiece")
            .field("vocab_size", &self.vocab_size())
            .field("pad_id", &self.pad_id())
            .finish()
    }
}

/// The special tokens of a BERT vocabulary.
struct Specials {
    unk: String,
    cls: String,
    sep: String,
    pad: String,
    mask: String,
}

impl WordPiece {
    /// Load the tokenizer of a model directory: `tokenizer.json` if present, otherwise
    /// `vocab.txt` (with `do_lower_case` and the special-token names from
    /// `tokenizer_config.json` when that exists; lower-casing by default).
    pub fn from_dir(dir: &Path) -> Result<Self, TextError> {
        let json_path = dir.join("tokenizer.json");
        if json_path.is_file() {
            let json =
                std::fs::read_to_string(&json_path).map_err(|e| TextError::io(&json_path, e))?;
            return Self::parse_json(&json, &json_path);
        }
        let vocab_path = dir.join("vocab.txt");
        if !vocab_path.is_file() {
            return Err(TextError::Tokenizer {
                path: dir.into(),
                message: "neither tokenizer.json nor vocab.txt in this directory".into(),
            });
        }
        let (lowercase, strip_accents, chinese, specials) = read_config(dir)?;
        Self::from_vocab_file(&vocab_path, lowercase, strip_accents, chinese, specials)
    }

    /// A tokenizer from a `tokenizer.json` string (as [`WordPiece::to_json`] writes it, e.g.
    /// restored from a model bundle).
    pub fn from_json(json: &str) -> Result<Self, TextError> {
        Self::parse_json(json, Path::new("<tokenizer.json>"))
    }

    /// The tokenizer as a `tokenizer.json` string, to store in a model bundle.
    /// The padding token is recorded in its `padding` section so that [`WordPiece::from_json`]
    /// restores [`WordPiece::pad_id`].
    pub fn to_json(&self) -> Result<String, TextError> {
        let mut with_pad = self.inner.clone();
        with_pad.with_padding(Some(PaddingParams {
            pad_id: self.pad.0,
            pad_token: self.pad.1.clone(),
            ..Default::default()
        }));
        with_pad.to_string(false).map_err(|e| TextError::Tokenizer {
            path: "<tokenizer.json>".into(),
            message: e.to_string(),
        })
    }

    /// The padding id: the `padding` section's id in a `tokenizer.json` that has one, else the
    /// id of the pad token (`[PAD]` unless `tokenizer_config.json` names another), else 0.
    pub fn pad_id(&self) -> u32 {
        self.pad.0
    }

    /// Number of ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The id of a token, if the vocabulary has it.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Encode `text` with its special tokens, at most `max_len` ids in all: the text's pieces
    /// are cut from the end so that `[CLS]` and `[SEP]` stay. Byte spans refer to `text`.
    pub fn encode(&self, text: &str, max_len: usize) -> Encoded {
        let added = self
            .inner
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(false));
        let encoding = self.inner.encode(text, false).and_then(|mut enc| {
            enc.truncate(max_len.saturating_sub(added), 0, TruncationDirection::Right);
            self.inner.post_process(enc, None, true)
        });
        let encoding = match encoding {
            Ok(e) => e,
            // The BERT pipeline does not fail on any string; should a custom tokenizer.json
            // do so, fall back to the special tokens alone rather than panic.
            Err(_) => match self.inner.post_process(Default::default(), None, true) {
                Ok(e) => e,
                Err(_) => return Encoded::default(),
            },
        };
        let special = encoding.get_special_tokens_mask();
        let mut out = Encoded {
            ids: encoding.get_ids().to_vec(),
            type_ids: encoding.get_type_ids().to_vec(),
            tokens: encoding.get_tokens().to_vec(),
            spans: encoding
                .get_offsets()
                .iter()
                .zip(special)
                .map(|(&(s, e), &sp)| (sp == 0).then_some((s, e)))
                .collect(),
        };
        if out.ids.len() > max_len {
            // Only when max_len cannot hold the special tokens themselves.
            out.truncate(max_len);
        }
        out
    }

    fn parse_json(json: &str, path: &Path) -> Result<Self, TextError> {
        let mut inner: tokenizers::Tokenizer =
            json.parse()
                .map_err(|e: tokenizers::Error| TextError::Tokenizer {
                    path: path.into(),
                    message: format!("not a valid tokenizer.json: {e}"),
                })?;
        let pad = match inner.get_padding() {
            Some(p) => (p.pad_id, p.pad_token.clone()),
            None => (inner.token_to_id("[PAD]").unwrap_or(0), "[PAD]".into()),
        };
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| TextError::Tokenizer {
                path: path.into(),
                message: e.to_string(),
            })?;
        Ok(WordPiece {
            inner: Box::new(inner),
            pad,
        })
    }

    fn from_vocab_file(
        path: &Path,
        lowercase: bool,
        strip_accents: Option<bool>,
        chinese: bool,
        specials: Specials,
    ) -> Result<Self, TextError> {
        let bytes = std::fs::read(path).map_err(|e| TextError::io(path, e))?;
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            TextError::Tokenizer {
                path: path.into(),
                message: format!("line {line}: not valid UTF-8"),
            }
        })?;
        let mut vocab = ahash::AHashMap::new();
        for (i, line) in text.split('\n').enumerate() {
            let token = line.strip_suffix('\r').unwrap_or(line).trim_end();
            if token.is_empty() {
                // A final newline, or a blank line (which BERT vocabularies do not have).
                continue;
            }
            vocab.insert(token.to_string(), i as u32);
        }
        let id = |token: &str| -> Result<u32, TextError> {
            vocab
                .get(token)
                .copied()
                .ok_or_else(|| TextError::Tokenizer {
                    path: path.into(),
                    message: format!("special token {token:?} is not in the vocabulary"),
                })
        };
        let (cls_id, sep_id) = (id(&specials.cls)?, id(&specials.sep)?);
        let pad = (
            vocab.get(&specials.pad).copied().unwrap_or(0),
            specials.pad.clone(),
        );
        id(&specials.unk)?;
        let present: Vec<AddedToken> = [
            &specials.unk,
            &specials.sep,
            &specials.cls,
            &specials.pad,
            &specials.mask,
        ]
        .into_iter()
        .filter(|t| vocab.contains_key(t.as_str()))
        .map(|t| AddedToken::from(t.clone(), true))
        .collect();
        let model = WordPieceModel::builder()
            .vocab(vocab)
            .unk_token(specials.unk.clone())
            .continuing_subword_prefix("##".into())
            .max_input_chars_per_word(100)
            .build()
            .map_err(|e| TextError::Tokenizer {
                path: path.into(),
                message: e.to_string(),
            })?;
        let mut inner = tokenizers::Tokenizer::new(model);
        let err = |e: tokenizers::Error| TextError::Tokenizer {
            path: path.into(),
            message: e.to_string(),
        };
        inner
            .with_normalizer(Some(BertNormalizer::new(
                true,
                chinese,
                strip_accents,
                lowercase,
            )))
            .map_err(err)?;
        inner
            .with_pre_tokenizer(Some(BertPreTokenizer))
            .with_post_processor(Some(BertProcessing::new(
                (specials.sep, sep_id),
                (specials.cls, cls_id),
            )))
            .with_decoder(Some(WordPieceDecoder::default()));
        inner.add_special_tokens(present).map_err(err)?;
        Ok(WordPiece {
            inner: Box::new(inner),
            pad,
        })
    }
}

/// `do_lower_case`, `strip_accents`, `tokenize_chinese_chars` and the special-token names from
/// `dir/tokenizer_config.json`, with BERT's defaults when it is absent.
fn read_config(dir: &Path) -> Result<(bool, Option<bool>, bool, Specials), TextError> {
    let mut specials = Specials {
        unk: "[UNK]".into(),
        cls: "[CLS]".into(),
        sep: "[SEP]".into(),
        pad: "[PAD]".into(),
        mask: "[MASK]".into(),
    };
    let path: PathBuf = dir.join("tokenizer_config.json");
    if !path.is_file() {
        return Ok((true, None, true, specials));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| TextError::io(&path, e))?;
    let config: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| TextError::Tokenizer {
            path: path.clone(),
            message: format!("line {}: {e}", e.line()),
        })?;
    let flag = |key: &str| -> Result<Option<bool>, TextError> {
        match config.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(TextError::Tokenizer {
                path: path.clone(),
                message: format!("field {key:?} should be true or false, found {other}"),
            }),
        }
    };
    let lowercase = flag("do_lower_case")?.unwrap_or(true);
    let strip_accents = flag("strip_accents")?;
    let chinese = flag("tokenize_chinese_chars")?.unwrap_or(true);
    // Special tokens are written as strings or as AddedToken objects {"content": ...}.
    let name = |key: &str| -> Option<String> {
        match config.get(key)? {
            serde_json::Value::String(s) => Some(s.clone()),
            v => v.get("content")?.as_str().map(str::to_string),
        }
    };
    for (key, slot) in [
        ("unk_token", &mut specials.unk),
        ("cls_token", &mut specials.cls),
        ("sep_token", &mut specials.sep),
        ("pad_token", &mut specials.pad),
        ("mask_token", &mut specials.mask),
    ] {
        if let Some(n) = name(key) {
            *slot = n;
        }
    }
    Ok((lowercase, strip_accents, chinese, specials))
}
