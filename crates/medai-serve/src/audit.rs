//! The append-only, hash-chained audit log (SQLite).
//!
//! One row per request: time, token id (never the token), endpoint, model, bundle SHA-256,
//! input SHA-256, output (label and probabilities as JSON), HTTP status, latency. No pixel data,
//! text or patient identifier is written. Each row stores `hash = SHA-256(prev_hash ‖ row)`, so
//! editing, inserting or deleting a row breaks the chain that [`verify`] walks; SQLite triggers
//! also refuse `UPDATE` and `DELETE`. Truncating the newest rows cannot be seen from the chain
//! alone: compare the last hash [`verify`] reports with a copy kept elsewhere.
//!
//! Writes go through one writer thread that commits whatever has queued in a single
//! transaction, so request handlers never wait on the disk.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::{Connection, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::ServeError;

/// The `prev_hash` of the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audited request.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AuditEvent {
    /// RFC 3339 UTC time with milliseconds.
    pub time: String,
    /// The caller's token id; empty when no valid token was given.
    pub token_id: String,
    /// Method and route, e.g. `POST /v2/models/{name}/infer`.
    pub endpoint: String,
    /// The model name, when the route has one.
    pub model: String,
    /// SHA-256 of the model's weights, when a model answered.
    pub bundle_sha256: String,
    /// SHA-256 of the input (tensor bytes or decoded pixels), when one was read.
    pub input_sha256: String,
    /// The answer (labels and probabilities) as JSON, or the error message.
    pub output: String,
    /// HTTP status code.
    pub status: u16,
    /// Milliseconds from request to response.
    pub latency_ms: f64,
}

/// The chain hash of a row.
fn row_hash(prev: &str, seq: i64, e: &AuditEvent) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(seq.to_le_bytes());
    for field in [
        &e.time,
        &e.token_id,
        &e.endpoint,
        &e.model,
        &e.bundle_sha256,
        &e.input_sha256,
        &e.output,
    ] {
        h.update((field.len() as u64).to_le_bytes());
        h.update(field.as_bytes());
    }
    h.update(e.status.to_le_bytes());
    h.update(e.latency_ms.to_le_bytes());
    hex::encode(h.finalize())
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY,
  time TEXT NOT NULL, token_id TEXT NOT NULL, endpoint TEXT NOT NULL, model TEXT NOT NULL,
  bundle_sha256 TEXT NOT NULL, input_sha256 TEXT NOT NULL, output TEXT NOT NULL,
  status INTEGER NOT NULL, latency_ms REAL NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
";

fn open(path: &Path) -> Result<Connection, ServeError> {
    let err = |e: rusqlite::Error| ServeError::Audit {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let conn = Connection::open(path).map_err(err)?;
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
        .map_err(err)?;
    conn.execute_batch(SCHEMA).map_err(err)?;
    Ok(conn)
}

/// Sends events to the writer thread. Dropping the last sender lets the thread finish the
/// queue and exit; [`AuditLog::close`] waits for that.
pub struct AuditLog {
    tx: Option<mpsc::Sender<AuditEvent>>,
    thread: Option<JoinHandle<()>>,
    path: PathBuf,
}

impl AuditLog {
    /// Open (or create) the log and start its writer thread.
    pub fn open(path: &Path) -> Result<AuditLog, ServeError> {
        let mut conn = open(path)?;
        let err = |e: rusqlite::Error| ServeError::Audit {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let (mut seq, mut prev): (i64, String) = conn
            .query_row(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok((0, GENESIS.to_string())),
                e => Err(err(e)),
            })?;
        let (tx, rx) = mpsc::channel::<AuditEvent>();
        let shown = path.display().to_string();
        let thread = std::thread::Builder::new()
            .name("medai-audit".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    let result = (|| -> rusqlite::Result<()> {
                        let t = conn.transaction()?;
                        {
                            let mut st = t.prepare_cached(
                                "INSERT INTO audit VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
                            )?;
                            for e in &batch {
                                let s = seq + 1;
                                let h = row_hash(&prev, s, e);
                                st.execute(params![
                                    s,
                                    e.time,
                                    e.token_id,
                                    e.endpoint,
                                    e.model,
                                    e.bundle_sha256,
                                    e.input_sha256,
                                    e.output,
                                    e.status,
                                    e.latency_ms,
                                    prev,
                                    h
                                ])?;
                                seq = s;
                                prev = h;
                            }
                        }
                        t.commit()
                    })();
                    if let Err(e) = result {
                        // The chain state is only advanced for committed rows: reload it.
                        tracing::error!("audit log {shown}: {e}");
                        if let Ok((s, h)) = conn.query_row(
                            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                            [],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        ) {
                            (seq, prev) = (s, h);
                        }
                    }
                }
            })
            .map_err(|e| ServeError::Audit {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        Ok(AuditLog {
            tx: Some(tx),
            thread: Some(thread),
            path: path.to_path_buf(),
        })
    }

    /// Queue one event (never blocks).
    pub fn record(&self, e: AuditEvent) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(e);
        }
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Write everything queued and stop the writer.
    pub fn close(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The outcome of [`verify`].
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    /// Rows checked.
    pub rows: u64,
    /// The hash of the last row (keep a copy elsewhere to detect truncation).
    pub head: String,
}

/// Walk the chain: sequence numbers contiguous from 1, each `prev_hash` equal to the previous
/// row's hash, each hash recomputed from the row. The first broken row is named in the error.
pub fn verify(path: &Path) -> Result<Verified, ServeError> {
    if !path.exists() {
        return Err(ServeError::Audit {
            path: path.to_path_buf(),
            reason: "no such file".into(),
        });
    }
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| ServeError::Audit {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let broken = |reason: String| ServeError::AuditBroken {
        path: path.to_path_buf(),
        reason,
    };
    let db = |e: rusqlite::Error| ServeError::Audit {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut st = conn
        .prepare("SELECT seq,time,token_id,endpoint,model,bundle_sha256,input_sha256,output,status,latency_ms,prev_hash,hash FROM audit ORDER BY seq")
        .map_err(db)?;
    let mut rows = st.query([]).map_err(db)?;
    let (mut expect_seq, mut prev) = (1i64, GENESIS.to_string());
    while let Some(r) = rows.next().map_err(db)? {
        let seq: i64 = r.get(0).map_err(db)?;
        let e = AuditEvent {
            time: r.get(1).map_err(db)?,
            token_id: r.get(2).map_err(db)?,
            endpoint: r.get(3).map_err(db)?,
            model: r.get(4).map_err(db)?,
            bundle_sha256: r.get(5).map_err(db)?,
            input_sha256: r.get(6).map_err(db)?,
            output: r.get(7).map_err(db)?,
            status: r.get(8).map_err(db)?,
            latency_ms: r.get(9).map_err(db)?,
        };
        let (stored_prev, stored_hash): (String, String) =
            (r.get(10).map_err(db)?, r.get(11).map_err(db)?);
        if seq != expect_seq {
            return Err(broken(format!(
                "row {seq}: expected row {expect_seq} (rows missing or inserted)"
            )));
        }
        if stored_prev != prev {
            return Err(broken(format!(
                "row {seq}: prev_hash does not match row {}'s hash",
                seq - 1
            )));
        }
        if row_hash(&prev, seq, &e) != stored_hash {
            return Err(broken(format!(
                "row {seq}: content does not match its hash (the row was edited)"
            )));
        }
        prev = stored_hash;
        expect_seq += 1;
    }
    Ok(Verified {
        rows: (expect_seq - 1) as u64,
        head: prev,
    })
}

/// Now as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    let t = time::OffsetDateTime::now_utc();
    let t = t
        .replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(i: u16) -> AuditEvent {
        AuditEvent {
            time: now_rfc3339(),
            token_id: "t_1".into(),
            endpoint: "POST /v2/models/{name}/infer".into(),
            model: "m".into(),
            bundle_sha256: "ab".repeat(32),
            input_sha256: format!("{i:064}"),
            output: format!("{{\"label\":[\"x{i}\"]}}"),
            status: 200,
            latency_ms: f64::from(i) * 0.5,
        }
    }

    #[test]
    fn the_chain_verifies_and_detects_edits_deletions_and_insertions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.sqlite");
        let log = AuditLog::open(&path).unwrap();
        for i in 0..50 {
            log.record(event(i));
        }
        log.close();
        // Reopening continues the same chain.
        let log = AuditLog::open(&path).unwrap();
        log.record(event(50));
        log.close();
        let v = verify(&path).unwrap();
        assert_eq!(v.rows, 51);

        // The triggers refuse edits through SQL …
        let conn = Connection::open(&path).unwrap();
        assert!(
            conn.execute("UPDATE audit SET status = 500 WHERE seq = 3", [])
                .is_err()
        );
        assert!(conn.execute("DELETE FROM audit WHERE seq = 3", []).is_err());
        // … and a tamperer who drops them is still caught by the chain.
        conn.execute_batch("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;")
            .unwrap();
        let copy = dir.path().join("copy.sqlite");
        conn.execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
            .unwrap();
        conn.execute("UPDATE audit SET output = '{}' WHERE seq = 7", [])
            .unwrap();
        let e = verify(&path).unwrap_err().to_string();
        assert!(e.contains("row 7") && e.contains("edited"), "{e}");

        let c2 = Connection::open(&copy).unwrap();
        c2.execute("DELETE FROM audit WHERE seq = 20", []).unwrap();
        let e = verify(&copy).unwrap_err().to_string();
        assert!(e.contains("row 21") && e.contains("missing"), "{e}");
        // Re-numbering after a deletion breaks the prev_hash link instead.
        c2.execute("UPDATE audit SET seq = seq - 1 WHERE seq > 20", [])
            .unwrap();
        let e = verify(&copy).unwrap_err().to_string();
        assert!(e.contains("row 20"), "{e}");
    }

    #[test]
    fn rfc3339_shape() {
        let t = now_rfc3339();
        assert!((20..=24).contains(&t.len()), "{t}");
        assert!(
            t.starts_with("20") && t.ends_with('Z') && &t[10..11] == "T",
            "{t}"
        );
    }
}
