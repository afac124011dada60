//! A throwaway PostgreSQL server for tests: `initdb` into a temporary directory, started on a
//! free loopback port, stopped (and deleted) on drop. Used by this crate's audit tests and, by
//! path, by the CLI's replica test.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running temporary server.
pub struct TempPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    port: u16,
    /// `postgresql://medai:secret@127.0.0.1:PORT/postgres` (trust authentication: the password
    /// is not checked, which lets tests see that it is hidden in messages).
    pub url: String,
}

/// The directory with `initdb` and `pg_ctl`: `MEDAI_PG_BIN`, `pg_config --bindir`, or Debian's
/// `/usr/lib/postgresql/*/bin`.
fn bin_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("MEDAI_PG_BIN") {
        return Some(PathBuf::from(d));
    }
    if let Ok(o) = Command::new("pg_config").arg("--bindir").output()
        && o.status.success()
    {
        let d = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
        if d.join("initdb").exists() {
            return Some(d);
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| d.join("initdb").exists())
        .collect();
    found.sort();
    found.pop()
}

/// Start a server, or `None` when PostgreSQL is not installed. CI
/// (`MEDAI_REQUIRE_INTEGRATION=1`) requires it: `.ci/run` installs it.
pub fn start() -> Option<TempPostgres> {
    let Some(bin) = bin_dir() else {
        assert!(
            std::env::var_os("MEDAI_REQUIRE_INTEGRATION").is_none(),
            "PostgreSQL (initdb, pg_ctl) is not installed; .ci/run installs it"
        );
        eprintln!("SKIPPED: PostgreSQL is not installed");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    // initdb refuses to run as root: run the server as the `postgres` user then.
    let as_postgres = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if as_postgres {
        let ok = Command::new("chown")
            .args(["postgres:", dir.path().to_str().unwrap()])
            .status()
            .unwrap();
        assert!(ok.success(), "chown the temporary directory to postgres");
    }
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let pg = TempPostgres {
        url: format!("postgresql://medai:secret@127.0.0.1:{port}/postgres"),
        dir,
        bin,
        as_postgres,
        port,
    };
    let data = pg.data();
    pg.run(
        "initdb",
        &[
            "-D",
            data.to_str().unwrap(),
            "-A",
            "trust",
            "-U",
            "medai",
            "-E",
            "UTF8",
            "--no-sync",
        ],
    );
    pg.start_server();
    Some(pg)
}

impl TempPostgres {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = c.args(args).current_dir(self.dir.path()).output().unwrap();
        assert!(
            out.status.success(),
            "{tool} {args:?}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Start (or restart) the server and wait until it accepts connections.
    pub fn start_server(&self) {
        let data = self.data();
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "start",
            ],
        );
    }

    /// Stop the server (fast shutdown: open connections are closed).
    pub fn stop_server(&self) {
        let data = self.data();
        self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
        );
    }

    /// Run SQL with `psql`-free means: the blocking client as the superuser.
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).unwrap()
    }

    /// The data directory's parent (for logs when a test fails).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let data = self.data();
        let exe = self.bin.join("pg_ctl");
        let args = ["-D", data.to_str().unwrap(), "-m", "immediate", "stop"];
        let _ = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        };
    }
}
