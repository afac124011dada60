//! The audit log on PostgreSQL: replicas sharing one database extend one hash chain, the table
//! is append-only, tampering is caught, and writes survive a database restart. Each test starts
//! its own throwaway server (`tests/pg`); without PostgreSQL installed they are skipped, except
//! in CI.

mod pg;

use std::time::{Duration, Instant};

use medai_serve::audit::{AuditEvent, AuditLog, AuditTarget, now_rfc3339, verify};

fn event(replica: usize, i: usize) -> AuditEvent {
    AuditEvent {
        time: now_rfc3339(),
        token_id: format!("replica{replica}"),
        endpoint: "POST /v2/models/{name}/infer".into(),
        model: "m".into(),
        bundle_sha256: "ab".repeat(32),
        input_sha256: format!("{i:064}"),
        output: format!("{{\"label\":[\"x{i}\"]}}"),
        status: 200,
        latency_ms: i as f64 * 0.25 + replica as f64,
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(30), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn replicas_extend_one_chain_and_tampering_is_caught() {
    let Some(pg) = pg::start() else { return };
    let target = AuditTarget::parse(&pg.url);
    assert!(matches!(target, AuditTarget::Postgres(_)));

    // Three replicas start at once (the table is created once) and log concurrently.
    let per = 300;
    std::thread::scope(|s| {
        for r in 0..3 {
            let target = target.clone();
            s.spawn(move || {
                let log = AuditLog::open(target).unwrap();
                for i in 0..per {
                    log.record(event(r, i));
                    if i % 25 == 0 {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
                log.close();
            });
        }
    });
    let v = verify(target.clone()).unwrap();
    assert_eq!(v.rows, 3 * per as u64);
    assert_eq!(v.head.len(), 64);

    let mut c = pg.client();
    let by_replica: Vec<(String, i64)> = c
        .query(
            "SELECT token_id, count(*) FROM audit GROUP BY token_id ORDER BY token_id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        by_replica,
        (0..3)
            .map(|r| (format!("replica{r}"), per as i64))
            .collect::<Vec<_>>()
    );
    // Each replica's rows keep their order within the shared chain.
    for r in 0..3 {
        let inputs: Vec<String> = c
            .query(
                "SELECT input_sha256 FROM audit WHERE token_id = $1 ORDER BY seq",
                &[&format!("replica{r}")],
            )
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert_eq!(
            inputs,
            (0..per).map(|i| format!("{i:064}")).collect::<Vec<_>>()
        );
    }

    // Append-only, even for the table's owner …
    for sql in [
        "UPDATE audit SET status = 500 WHERE seq = 3",
        "DELETE FROM audit WHERE seq = 3",
        "TRUNCATE audit",
    ] {
        let e = c.batch_execute(sql).unwrap_err();
        let msg = e.as_db_error().map(|d| d.message().to_string());
        assert_eq!(
            msg.as_deref(),
            Some("the audit log is append-only"),
            "{sql}: {e}"
        );
    }
    // … and a tamperer who disables the triggers is still caught by the chain.
    c.batch_execute("ALTER TABLE audit DISABLE TRIGGER USER")
        .unwrap();
    let original: String = c
        .query_one("SELECT output FROM audit WHERE seq = 7", &[])
        .unwrap()
        .get(0);
    c.execute("UPDATE audit SET output = '{}' WHERE seq = 7", &[])
        .unwrap();
    let e = verify(target.clone()).unwrap_err().to_string();
    assert!(e.contains("row 7") && e.contains("edited"), "{e}");
    assert!(!e.contains("secret") && e.contains("medai:***@"), "{e}");
    c.execute("UPDATE audit SET output = $1 WHERE seq = 7", &[&original])
        .unwrap();
    assert_eq!(verify(target.clone()).unwrap().rows, 3 * per as u64);
    c.execute("DELETE FROM audit WHERE seq = 20", &[]).unwrap();
    let e = verify(target).unwrap_err().to_string();
    assert!(e.contains("row 21") && e.contains("missing"), "{e}");
}

#[test]
fn rows_written_while_the_database_is_down_arrive_after_it_returns() {
    let Some(pg) = pg::start() else { return };
    let target = AuditTarget::parse(&pg.url);
    let log = AuditLog::open(target.clone()).unwrap();
    for i in 0..10 {
        log.record(event(0, i));
    }
    wait_until("first rows written", || {
        verify(target.clone()).is_ok_and(|v| v.rows == 10)
    });
    assert!(log.healthy());

    pg.stop_server();
    // Enough rows to be written as several multi-row INSERTs once the database is back.
    for i in 10..1210 {
        log.record(event(0, i));
    }
    wait_until("the writer notices", || !log.healthy());
    pg.start_server();
    wait_until("the writer catches up", || log.healthy());
    log.close();
    let v = verify(target).unwrap();
    assert_eq!(v.rows, 1210);
}

#[test]
fn an_unreachable_database_is_named_without_its_password() {
    // Nothing listens on port 1; no server is needed for this one.
    let url = "postgresql://medai:hunter2@127.0.0.1:1/audit?connect_timeout=2";
    let e = match AuditLog::open(AuditTarget::parse(url)) {
        Ok(_) => panic!("connected to port 1"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.starts_with("postgresql://medai:***@127.0.0.1:1/audit"),
        "{e}"
    );
    assert!(!e.contains("hunter2"), "{e}");
    let e = verify(AuditTarget::parse(url)).unwrap_err().to_string();
    assert!(e.contains("medai:***@") && !e.contains("hunter2"), "{e}");
    let e = match AuditLog::open(AuditTarget::parse("postgresql://x:y@h:notaport/db")) {
        Ok(_) => panic!("accepted a bad URL"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("invalid URL") && !e.contains(":y@"), "{e}");
}
