//! # medai-serve
//!
//! The inference service behind `medai serve`: trained bundles answer over HTTP the way a
//! hospital's IT expects a production service to behave.
//!
//! - **API** ([`server`], [`oip`]): the KServe / Triton Open Inference Protocol v2 REST API with
//!   JSON tensors and the binary tensor data extension, so `tritonclient` works unchanged; a
//!   small `/v1` API that takes an image or DICOM upload and returns probabilities, the label,
//!   the thresholded decision and optionally a Grad-CAM overlay; a web page at `/`.
//!   `API.md` beside this crate documents every route.
//! - **Security** ([`auth`], [`audit`]): bearer tokens stored as HMAC-SHA256 with a server
//!   secret and compared in constant time, with roles; an append-only, hash-chained audit log
//!   (a SQLite file, or a PostgreSQL database shared by replicas) with no pixel data, text or
//!   identifiers in it.
//! - **Operations** ([`batch`], [`metrics`]): dynamic batching on a thread per model (never
//!   on the async runtime), Prometheus `/metrics`, body/pixel/concurrency limits with 503 +
//!   `Retry-After`, request timeouts, graceful shutdown, optional TLS (rustls).
//!
//! Models are seen only through the [`Predictor`] trait: this crate does not depend on the
//! deep-learning engine; the CLI adapts its Burn models to it.

pub mod audit;
pub mod auth;
pub mod batch;
pub mod metrics;
pub mod oip;
pub mod predictor;
pub mod server;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use auth::{AuthFile, Role};
pub use batch::BatchConfig;
pub use predictor::{ModelMeta, Predictor};
pub use server::{ServeConfig, Service};

/// Errors of the service's files and startup. Every message names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The auth file could not be read, parsed or written.
    #[error("{path}: auth file: {reason}")]
    Auth {
        /// The auth file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The audit log could not be opened or read.
    #[error("{target}: audit log: {reason}")]
    Audit {
        /// The audit database: a file path, or a URL with its password hidden.
        target: String,
        /// What went wrong.
        reason: String,
    },
    /// The audit chain does not verify.
    #[error("{target}: audit chain broken at {reason}")]
    AuditBroken {
        /// The audit database: a file path, or a URL with its password hidden.
        target: String,
        /// The first broken row and why.
        reason: String,
    },
    /// The TLS certificate or key could not be loaded.
    #[error("TLS certificate {cert} / key {key}: {reason}")]
    Tls {
        /// The certificate chain (PEM).
        cert: PathBuf,
        /// The private key (PEM).
        key: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Two models were given the same name, or another configuration error.
    #[error("{0}")]
    Config(String),
    /// Binding or serving failed.
    #[error("{addr}: {reason}")]
    Io {
        /// The address.
        addr: String,
        /// What went wrong.
        reason: String,
    },
}

/// Write `bytes` to `path` atomically (temporary sibling + rename); `private` makes the file
/// readable by its owner only (Unix).
pub fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile_in(dir, path)?;
    tmp.1.write_all(bytes)?;
    tmp.1.sync_all()?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp.0, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = private;
    std::fs::rename(&tmp.0, path)
}

fn tempfile_in(dir: &Path, path: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    for i in 0..100u32 {
        let p = dir.join(format!(".{name}.tmp{}-{i}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(f) => return Ok((p, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free temporary file name"))
}
