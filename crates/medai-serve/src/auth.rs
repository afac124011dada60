//! Bearer tokens: created once, stored only as HMAC-SHA256(secret, token), checked in constant
//! time, each with a role.

use std::path::Path;

use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::ServeError;

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Model endpoints (metadata, inference, predict, card).
    Predict,
    /// Everything, including `/metrics`.
    Admin,
}

impl Role {
    /// Parse `predict` or `admin`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "predict" => Some(Role::Predict),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Whether this role includes `needed`.
    pub fn allows(self, needed: Role) -> bool {
        self == Role::Admin || needed == Role::Predict
    }
}

/// One stored token (never the token itself).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TokenEntry {
    /// Public identifier, written to the audit log.
    pub id: String,
    /// A human name for whom the token was made.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Hex HMAC-SHA256(secret, token).
    pub hash: String,
    /// Creation time (RFC 3339).
    pub created: String,
}

/// The auth file: a server secret and the token entries.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AuthFile {
    /// Always `medai-auth`.
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// Hex 32-byte HMAC key.
    pub secret: String,
    /// The tokens.
    pub tokens: Vec<TokenEntry>,
}

/// The identity behind a valid token.
#[derive(Clone, Debug, PartialEq)]
pub struct Caller {
    /// The token's id.
    pub token_id: String,
    /// The token's role.
    pub role: Role,
}

type HmacSha256 = Hmac<Sha256>;

impl AuthFile {
    /// A new auth file with a fresh random secret and no tokens.
    pub fn new() -> AuthFile {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        AuthFile {
            format: "medai-auth".into(),
            version: 1,
            secret: hex::encode(secret),
            tokens: Vec::new(),
        }
    }

    /// Read and check an auth file.
    pub fn read(path: &Path) -> Result<AuthFile, ServeError> {
        let bad = |reason: String| ServeError::Auth {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let f: AuthFile = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if f.format != "medai-auth" || f.version != 1 {
            return Err(bad(format!(
                "format {:?} version {} (expected \"medai-auth\" version 1)",
                f.format, f.version
            )));
        }
        match hex::decode(&f.secret) {
            Ok(k) if k.len() >= 32 => {}
            _ => return Err(bad("secret must be at least 32 bytes of hex".into())),
        }
        for t in &f.tokens {
            if hex::decode(&t.hash).map(|h| h.len()) != Ok(32) {
                return Err(bad(format!("token {}: hash is not 64 hex digits", t.id)));
            }
        }
        Ok(f)
    }

    /// Read `path`, or start a new file when it does not exist.
    pub fn read_or_new(path: &Path) -> Result<AuthFile, ServeError> {
        if path.exists() {
            AuthFile::read(path)
        } else {
            Ok(AuthFile::new())
        }
    }

    /// Write atomically with owner-only permissions (temporary file + rename).
    pub fn write(&self, path: &Path) -> Result<(), ServeError> {
        let text = serde_json::to_string_pretty(self).expect("auth file serialises");
        crate::write_atomic(path, text.as_bytes(), true).map_err(|e| ServeError::Auth {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    fn mac(&self, token: &str) -> HmacSha256 {
        let key = hex::decode(&self.secret).expect("secret checked on read");
        let mut mac = HmacSha256::new_from_slice(&key).expect("HMAC takes any key length");
        mac.update(token.as_bytes());
        mac
    }

    /// Add a token; returns the token string (shown once, never stored).
    pub fn create_token(&mut self, name: &str, role: Role) -> String {
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let token = format!(
            "mdai_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        );
        let mut id = [0u8; 4];
        rand::rng().fill_bytes(&mut id);
        let hash = hex::encode(self.mac(&token).finalize().into_bytes());
        self.tokens.push(TokenEntry {
            id: format!("t_{}", hex::encode(id)),
            name: name.to_string(),
            role,
            hash,
            created: crate::audit::now_rfc3339(),
        });
        token
    }

    /// The caller a token belongs to. Every entry is compared, each in constant time, so the
    /// answer's timing does not depend on which entry (if any) matched or on how many leading
    /// bytes agreed.
    pub fn check(&self, token: &str) -> Option<Caller> {
        let mut found = None;
        for t in &self.tokens {
            let Ok(expected) = hex::decode(&t.hash) else {
                continue;
            };
            if self.mac(token).verify_slice(&expected).is_ok() && found.is_none() {
                found = Some(Caller {
                    token_id: t.id.clone(),
                    role: t.role,
                });
            }
        }
        found
    }
}

impl Default for AuthFile {
    fn default() -> Self {
        AuthFile::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_by_keyed_hash_and_role() {
        let mut f = AuthFile::new();
        let p = f.create_token("ward", Role::Predict);
        let a = f.create_token("ops", Role::Admin);
        assert!(p.starts_with("mdai_") && p.len() == 5 + 43);
        // Only the keyed hash is stored.
        let stored = serde_json::to_string(&f).unwrap();
        assert!(!stored.contains(&p[5..]) && !stored.contains(&a[5..]));
        assert_eq!(f.check(&p).unwrap().role, Role::Predict);
        assert_eq!(f.check(&a).unwrap().role, Role::Admin);
        assert_eq!(f.check(&p).unwrap().token_id, f.tokens[0].id);
        assert!(f.check("mdai_wrong").is_none());
        assert!(f.check("").is_none());
        // A different secret does not accept the same token.
        let mut g = f.clone();
        g.secret = AuthFile::new().secret;
        assert!(g.check(&p).is_none());
        assert!(Role::Admin.allows(Role::Predict));
        assert!(!Role::Predict.allows(Role::Admin));
    }

    #[test]
    fn auth_file_round_trips_and_rejects_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        let mut f = AuthFile::new();
        let t = f.create_token("x", Role::Predict);
        f.write(&path).unwrap();
        let g = AuthFile::read(&path).unwrap();
        assert_eq!(f, g);
        assert!(g.check(&t).is_some());
        std::fs::write(
            &path,
            "{\"format\":\"medai-auth\",\"version\":1,\"secret\":\"00\",\"tokens\":[]}",
        )
        .unwrap();
        let e = AuthFile::read(&path).unwrap_err().to_string();
        assert!(e.contains("auth.json") && e.contains("secret"), "{e}");
        std::fs::write(&path, "not json").unwrap();
        assert!(AuthFile::read(&path).is_err());
    }
}
