//! The append-only, hash-chained audit log: a SQLite file by default, or a PostgreSQL database
//! that any number of service replicas share.
//!
//! One row per request: time, token id (never the token), endpoint, model, bundle SHA-256,
//! input SHA-256, output (label and probabilities as JSON), HTTP status, latency. No pixel data,
//! text or patient identifier is written. Each row stores `hash = SHA-256(prev_hash ‖ row)`, so
//! editing, inserting or deleting a row breaks the chain that [`verify`] walks; triggers also
//! refuse `UPDATE` and `DELETE` (and, on PostgreSQL, `TRUNCATE`). Truncating the newest rows
//! cannot be seen from the chain alone: compare the last hash [`verify`] reports with a copy kept
//! elsewhere.
//!
//! Writes go through one writer thread per process that commits whatever has queued in a single
//! transaction, so request handlers never wait on the database. Each transaction takes the
//! database's write lock (SQLite `BEGIN IMMEDIATE`; a PostgreSQL transaction-scoped advisory
//! lock), reads the chain's head and appends after it, so several processes — replicas behind a
//! load balancer — extend one chain without forking it. When the database is unreachable the
//! writer keeps the rows, reconnects with back-off and writes them later; [`AuditLog::healthy`]
//! turns false meanwhile, and the service reports itself not ready.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior, params};
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

/// Where the audit log lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditTarget {
    /// A SQLite file, created if missing (processes on one host may share it).
    Sqlite(PathBuf),
    /// A PostgreSQL database given as a `postgres://` or `postgresql://` URL (for example
    /// `postgresql://medai:secret@db:5432/audit`); the `audit` table is created if missing.
    /// Replicas on many machines share it.
    Postgres(String),
}

impl AuditTarget {
    /// A `postgres://` / `postgresql://` URL is a PostgreSQL database; anything else a SQLite
    /// file path.
    pub fn parse(s: &str) -> AuditTarget {
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            AuditTarget::Postgres(s.to_string())
        } else {
            AuditTarget::Sqlite(PathBuf::from(s))
        }
    }

    /// How the target is shown in messages: the path, or the URL with its password replaced
    /// by `***`.
    pub fn redacted(&self) -> String {
        match self {
            AuditTarget::Sqlite(p) => p.display().to_string(),
            AuditTarget::Postgres(url) => redact_url(url),
        }
    }

    fn err(&self, reason: impl fmt::Display) -> ServeError {
        ServeError::Audit {
            target: self.redacted(),
            reason: reason.to_string(),
        }
    }
}

/// `scheme://user:password@host/db?...` → `scheme://user:***@host/db?...`; also hides a
/// `password=` query parameter.
fn redact_url(url: &str) -> String {
    let Some(i) = url.find("://") else {
        return url.to_string();
    };
    let (scheme, rest) = url.split_at(i + 3);
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(auth_end);
    let authority = match authority.rfind('@') {
        Some(at) => match authority[..at].find(':') {
            Some(colon) => format!("{}:***{}", &authority[..colon], &authority[at..]),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let path = match path.split_once('?') {
        Some((p, q)) => {
            let q: Vec<String> = q
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{p}?{}", q.join("&"))
        }
        None => path.to_string(),
    };
    format!("{scheme}{authority}{path}")
}

impl fmt::Display for AuditTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl FromStr for AuditTarget {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<AuditTarget, Self::Err> {
        Ok(AuditTarget::parse(s))
    }
}

impl From<&Path> for AuditTarget {
    fn from(p: &Path) -> AuditTarget {
        AuditTarget::Sqlite(p.to_path_buf())
    }
}

impl From<PathBuf> for AuditTarget {
    fn from(p: PathBuf) -> AuditTarget {
        AuditTarget::Sqlite(p)
    }
}

impl From<&PathBuf> for AuditTarget {
    fn from(p: &PathBuf) -> AuditTarget {
        AuditTarget::Sqlite(p.clone())
    }
}

const SQLITE_SCHEMA: &str = "
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

/// The PostgreSQL table, created (once, under [`PG_LOCK`]) when `to_regclass('audit')` finds
/// none. A service role that may only `SELECT` and `INSERT` on an existing table works too.
const PG_SCHEMA: &str = "
CREATE TABLE audit (
  seq BIGINT PRIMARY KEY,
  time TEXT NOT NULL, token_id TEXT NOT NULL, endpoint TEXT NOT NULL, model TEXT NOT NULL,
  bundle_sha256 TEXT NOT NULL, input_sha256 TEXT NOT NULL, output TEXT NOT NULL,
  status INTEGER NOT NULL, latency_ms DOUBLE PRECISION NOT NULL, prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL);
CREATE OR REPLACE FUNCTION medai_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
CREATE TRIGGER audit_no_update_delete BEFORE UPDATE OR DELETE ON audit
  FOR EACH ROW EXECUTE FUNCTION medai_audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
  FOR EACH STATEMENT EXECUTE FUNCTION medai_audit_append_only();
";

/// The key of the transaction-scoped advisory lock that serialises appends (and table
/// creation) among all writers of one PostgreSQL database. Advisory locks need no table
/// privilege, so an insert-only service role can take it.
const PG_LOCK: i64 = 0x6d65_6461_6961_7564; // "medaiaud"

/// Rows per multi-row `INSERT` on PostgreSQL (12 parameters each; the protocol allows 65 535).
const PG_ROWS: usize = 500;

const SELECT_ROWS: &str = "SELECT seq,time,token_id,endpoint,model,bundle_sha256,input_sha256,output,status,latency_ms,prev_hash,hash FROM audit ORDER BY seq";
const SELECT_HEAD: &str = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1";

/// An open audit database.
enum Store {
    Sqlite(Connection),
    Postgres(Box<postgres::Client>),
}

impl Store {
    /// Connect for writing: create the schema when missing.
    fn open_writer(target: &AuditTarget) -> Result<Store, String> {
        match target {
            AuditTarget::Sqlite(path) => {
                let conn = Connection::open(path).map_err(|e| e.to_string())?;
                conn.busy_timeout(Duration::from_secs(10))
                    .map_err(|e| e.to_string())?;
                conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
                    .map_err(|e| e.to_string())?;
                conn.execute_batch(SQLITE_SCHEMA)
                    .map_err(|e| e.to_string())?;
                Ok(Store::Sqlite(conn))
            }
            AuditTarget::Postgres(url) => {
                let mut client = pg_connect(url)?;
                // Replicas that start together create the table once: the lock comes before
                // the first catalog lookup, so the lookup sees a table another replica has
                // just committed.
                let mut t = client.transaction().map_err(pg_err)?;
                t.execute("SELECT pg_advisory_xact_lock($1)", &[&PG_LOCK])
                    .map_err(pg_err)?;
                let exists: bool = t
                    .query_one("SELECT to_regclass('audit') IS NOT NULL", &[])
                    .map_err(pg_err)?
                    .get(0);
                if !exists {
                    t.batch_execute(PG_SCHEMA).map_err(pg_err)?;
                }
                t.commit().map_err(pg_err)?;
                Ok(Store::Postgres(Box::new(client)))
            }
        }
    }

    /// Whether the connection is gone for good (reconnect before the next attempt).
    fn is_broken(&self) -> bool {
        match self {
            Store::Sqlite(_) => false,
            Store::Postgres(c) => c.is_closed(),
        }
    }

    /// Append `batch` after the current head of the chain, in one transaction that holds the
    /// database's write lock from reading the head to the commit.
    fn append(&mut self, batch: &[AuditEvent]) -> Result<(), String> {
        match self {
            Store::Sqlite(conn) => {
                let t = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(|e| e.to_string())?;
                let (mut seq, mut prev) = sqlite_head(&t).map_err(|e| e.to_string())?;
                {
                    let mut st = t
                        .prepare_cached(
                            "INSERT INTO audit VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
                        )
                        .map_err(|e| e.to_string())?;
                    for e in batch {
                        seq += 1;
                        let h = row_hash(&prev, seq, e);
                        st.execute(params![
                            seq,
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
                        ])
                        .map_err(|e| e.to_string())?;
                        prev = h;
                    }
                }
                t.commit().map_err(|e| e.to_string())
            }
            Store::Postgres(client) => {
                let mut t = client.transaction().map_err(pg_err)?;
                t.execute("SELECT pg_advisory_xact_lock($1)", &[&PG_LOCK])
                    .map_err(pg_err)?;
                let (mut seq, mut prev) = match t.query_opt(SELECT_HEAD, &[]).map_err(pg_err)? {
                    Some(r) => (r.get::<_, i64>(0), r.get::<_, String>(1)),
                    None => (0, GENESIS.to_string()),
                };
                // The chain first, then multi-row INSERTs: one round trip per PG_ROWS rows.
                let mut rows = Vec::with_capacity(batch.len());
                for e in batch {
                    seq += 1;
                    let h = row_hash(&prev, seq, e);
                    rows.push((seq, e, i32::from(e.status), std::mem::replace(&mut prev, h)));
                }
                let hashes: Vec<&str> = rows
                    .iter()
                    .skip(1)
                    .map(|r| r.3.as_str())
                    .chain(std::iter::once(prev.as_str()))
                    .collect();
                for (chunk, chunk_hashes) in rows.chunks(PG_ROWS).zip(hashes.chunks(PG_ROWS)) {
                    let mut sql = String::from("INSERT INTO audit VALUES ");
                    let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> =
                        Vec::with_capacity(chunk.len() * 12);
                    for (i, ((seq, e, status, prev), hash)) in
                        chunk.iter().zip(chunk_hashes).enumerate()
                    {
                        let b = i * 12;
                        sql.push_str(if i == 0 { "(" } else { ",(" });
                        let cols: Vec<String> = (1..=12).map(|c| format!("${}", b + c)).collect();
                        sql.push_str(&cols.join(","));
                        sql.push(')');
                        params.extend([
                            seq as &(dyn postgres::types::ToSql + Sync),
                            &e.time,
                            &e.token_id,
                            &e.endpoint,
                            &e.model,
                            &e.bundle_sha256,
                            &e.input_sha256,
                            &e.output,
                            status,
                            &e.latency_ms,
                            prev,
                            hash,
                        ]);
                    }
                    t.execute(sql.as_str(), &params).map_err(pg_err)?;
                }
                t.commit().map_err(pg_err)
            }
        }
    }
}

fn sqlite_head(conn: &Connection) -> rusqlite::Result<(i64, String)> {
    match conn.query_row(SELECT_HEAD, [], |r| Ok((r.get(0)?, r.get(1)?))) {
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok((0, GENESIS.to_string())),
        other => other,
    }
}

/// A PostgreSQL error with its server-side detail (the `Display` of the client's error alone
/// is often just "db error").
fn pg_err(e: postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => e.to_string(),
    }
}

/// Connect without TLS unless the URL asks for it (`sslmode=require` is refused: this build
/// speaks plain TCP to the database; keep it on a private network, or put a TLS sidecar such as
/// the cloud provider's database proxy next to the service).
fn pg_connect(url: &str) -> Result<postgres::Client, String> {
    let mut cfg = postgres::Config::from_str(url).map_err(|e| format!("invalid URL: {e}"))?;
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(Duration::from_secs(10));
    }
    if cfg.get_application_name().is_none() {
        cfg.application_name("medai-serve");
    }
    cfg.connect(postgres::NoTls).map_err(|e| {
        let detail = pg_err(e);
        if detail.contains("TLS") {
            format!(
                "{detail} (this build connects without TLS: use sslmode=disable or prefer on a private network)"
            )
        } else {
            detail
        }
    })
}

/// How long the writer waits before retrying a failed write (doubling up to the last).
const BACKOFF: [u64; 6] = [50, 100, 250, 500, 1000, 2000];
/// Failed attempts after shutdown began before the remaining rows are given up (and logged).
const ATTEMPTS_AFTER_CLOSE: usize = 10;

/// Sends events to the writer thread. Dropping the last sender lets the thread finish the
/// queue and exit; [`AuditLog::close`] waits for that.
pub struct AuditLog {
    tx: Option<mpsc::Sender<AuditEvent>>,
    thread: Option<JoinHandle<()>>,
    target: AuditTarget,
    healthy: Arc<AtomicBool>,
}

impl AuditLog {
    /// Open (or create) the log and start its writer thread. Fails when the database cannot be
    /// reached or its schema cannot be created.
    pub fn open(target: impl Into<AuditTarget>) -> Result<AuditLog, ServeError> {
        let target = target.into();
        let (tx, rx) = mpsc::channel::<AuditEvent>();
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(), String>>(1);
        let healthy = Arc::new(AtomicBool::new(true));
        let (t2, h2) = (target.clone(), healthy.clone());
        // The writer connects on its own thread: PostgreSQL's blocking client runs a private
        // async runtime, which must not start inside the caller's.
        let thread = std::thread::Builder::new()
            .name("medai-audit".into())
            .spawn(move || match Store::open_writer(&t2) {
                Ok(store) => {
                    let _ = ready_tx.send(Ok(()));
                    writer(t2, store, rx, h2);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| target.err(e))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(AuditLog {
                tx: Some(tx),
                thread: Some(thread),
                target,
                healthy,
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(target.err(e))
            }
            Err(_) => {
                let _ = thread.join();
                Err(target.err("the audit writer stopped"))
            }
        }
    }

    /// Queue one event (never blocks).
    pub fn record(&self, e: AuditEvent) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(e);
        }
    }

    /// Where the log is written.
    pub fn target(&self) -> &AuditTarget {
        &self.target
    }

    /// False while the last write failed (rows are kept and retried).
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
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

/// The writer loop: batch whatever has queued, append it, and on failure keep it, reconnect
/// if the connection broke, back off and retry.
fn writer(
    target: AuditTarget,
    store: Store,
    rx: mpsc::Receiver<AuditEvent>,
    healthy: Arc<AtomicBool>,
) {
    let shown = target.redacted();
    let mut store = Some(store);
    let mut pending: Vec<AuditEvent> = Vec::new();
    let mut closed = false;
    let mut failures = 0usize;
    let mut failures_since_close = 0usize;
    loop {
        if pending.is_empty() {
            if closed {
                break;
            }
            match rx.recv() {
                Ok(e) => pending.push(e),
                Err(_) => break,
            }
        }
        loop {
            match rx.try_recv() {
                Ok(e) => pending.push(e),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        if store.is_none() {
            match Store::open_writer(&target) {
                Ok(s) => store = Some(s),
                Err(e) => tracing::error!("audit log {shown}: reconnecting: {e}"),
            }
        }
        let result = match store.as_mut() {
            Some(s) => s.append(&pending),
            None => Err("not connected".into()),
        };
        match result {
            Ok(()) => {
                pending.clear();
                if failures > 0 {
                    tracing::info!("audit log {shown}: writing again");
                }
                failures = 0;
                healthy.store(true, Ordering::Relaxed);
            }
            Err(e) => {
                healthy.store(false, Ordering::Relaxed);
                tracing::error!(
                    "audit log {shown}: {e} ({} rows kept for the next attempt)",
                    pending.len()
                );
                if store.as_ref().is_some_and(Store::is_broken) {
                    store = None;
                }
                if closed {
                    failures_since_close += 1;
                    if failures_since_close >= ATTEMPTS_AFTER_CLOSE {
                        tracing::error!(
                            "audit log {shown}: giving up at shutdown: {} rows NOT written",
                            pending.len()
                        );
                        break;
                    }
                }
                std::thread::sleep(Duration::from_millis(
                    BACKOFF[failures.min(BACKOFF.len() - 1)],
                ));
                failures += 1;
            }
        }
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

/// Walks the chain one row at a time.
struct Chain {
    expect_seq: i64,
    prev: String,
}

impl Chain {
    fn new() -> Chain {
        Chain {
            expect_seq: 1,
            prev: GENESIS.to_string(),
        }
    }

    fn check(
        &mut self,
        seq: i64,
        e: &AuditEvent,
        stored_prev: &str,
        stored_hash: String,
    ) -> Result<(), String> {
        if seq != self.expect_seq {
            return Err(format!(
                "row {seq}: expected row {} (rows missing or inserted)",
                self.expect_seq
            ));
        }
        if stored_prev != self.prev {
            return Err(format!(
                "row {seq}: prev_hash does not match row {}'s hash",
                seq - 1
            ));
        }
        if row_hash(&self.prev, seq, e) != stored_hash {
            return Err(format!(
                "row {seq}: content does not match its hash (the row was edited)"
            ));
        }
        self.prev = stored_hash;
        self.expect_seq += 1;
        Ok(())
    }

    fn done(self) -> Verified {
        Verified {
            rows: (self.expect_seq - 1) as u64,
            head: self.prev,
        }
    }
}

/// An event from a stored row: its text columns 1–7 by index (`text`), status and latency.
fn row_event<E>(
    text: impl Fn(usize) -> Result<String, E>,
    status: u16,
    latency_ms: f64,
) -> Result<AuditEvent, E> {
    Ok(AuditEvent {
        time: text(1)?,
        token_id: text(2)?,
        endpoint: text(3)?,
        model: text(4)?,
        bundle_sha256: text(5)?,
        input_sha256: text(6)?,
        output: text(7)?,
        status,
        latency_ms,
    })
}

/// Walk the chain: sequence numbers contiguous from 1, each `prev_hash` equal to the previous
/// row's hash, each hash recomputed from the row. The first broken row is named in the error.
/// The database is only read (PostgreSQL: one read-only, repeatable-read transaction).
pub fn verify(target: impl Into<AuditTarget>) -> Result<Verified, ServeError> {
    let target = target.into();
    let broken = |reason: String| ServeError::AuditBroken {
        target: target.redacted(),
        reason,
    };
    let mut chain = Chain::new();
    match &target {
        AuditTarget::Sqlite(path) => {
            if !path.exists() {
                return Err(target.err("no such file"));
            }
            let conn =
                Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                    .map_err(|e| target.err(e))?;
            let db = |e: rusqlite::Error| target.err(e);
            let mut st = conn.prepare(SELECT_ROWS).map_err(db)?;
            let mut rows = st.query([]).map_err(db)?;
            while let Some(r) = rows.next().map_err(db)? {
                let e = row_event(
                    |i| r.get::<_, String>(i).map_err(db),
                    r.get(8).map_err(db)?,
                    r.get(9).map_err(db)?,
                )?;
                let seq: i64 = r.get(0).map_err(db)?;
                let stored_prev: String = r.get(10).map_err(db)?;
                chain
                    .check(seq, &e, &stored_prev, r.get(11).map_err(db)?)
                    .map_err(broken)?;
            }
        }
        AuditTarget::Postgres(url) => {
            let mut client = pg_connect(url).map_err(|e| target.err(e))?;
            let db = |e: postgres::Error| target.err(pg_err(e));
            let mut t = client
                .build_transaction()
                .read_only(true)
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .start()
                .map_err(db)?;
            let portal = t.bind(SELECT_ROWS, &[]).map_err(db)?;
            loop {
                let rows = t.query_portal(&portal, 10_000).map_err(db)?;
                if rows.is_empty() {
                    break;
                }
                for r in rows {
                    let status: i32 = r.try_get(8).map_err(db)?;
                    let e = row_event(
                        |i| r.try_get::<_, String>(i).map_err(db),
                        // An out-of-range status cannot match its hash: verify reports the row.
                        u16::try_from(status).unwrap_or(u16::MAX),
                        r.try_get(9).map_err(db)?,
                    )?;
                    let seq: i64 = r.try_get(0).map_err(db)?;
                    let stored_prev: String = r.try_get(10).map_err(db)?;
                    chain
                        .check(seq, &e, &stored_prev, r.try_get(11).map_err(db)?)
                        .map_err(broken)?;
                }
            }
        }
    }
    Ok(chain.done())
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
    fn two_processes_sharing_one_file_extend_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.sqlite");
        let (a, b) = (
            AuditLog::open(&path).unwrap(),
            AuditLog::open(&path).unwrap(),
        );
        for i in 0..200 {
            a.record(event(i));
            b.record(event(1000 + i));
            if i % 20 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        a.close();
        b.close();
        assert_eq!(verify(&path).unwrap().rows, 400);
    }

    #[test]
    fn targets_parse_and_hide_passwords() {
        assert_eq!(
            AuditTarget::parse("medai-audit.sqlite"),
            AuditTarget::Sqlite("medai-audit.sqlite".into())
        );
        let t = AuditTarget::parse("postgresql://u:pw@db:5432/audit?sslmode=disable");
        assert!(matches!(t, AuditTarget::Postgres(_)));
        assert_eq!(
            t.to_string(),
            "postgresql://u:***@db:5432/audit?sslmode=disable"
        );
        assert_eq!(
            AuditTarget::parse("postgres://db/audit?user=u&password=pw").to_string(),
            "postgres://db/audit?user=u&password=***"
        );
        assert_eq!(
            AuditTarget::parse("POSTGRES://u@db/a").to_string(),
            "POSTGRES://u@db/a"
        );
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
