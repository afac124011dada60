//! Helpers shared by the CLI test files: run the `medai` binary and check its outcome.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Run `medai` with `args`.
pub fn medai(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medai"))
        .args(args)
        .output()
        .expect("run medai")
}

/// Run `medai`, assert success, return stdout.
pub fn ok(args: &[&str]) -> String {
    let out = medai(args);
    assert!(
        out.status.success(),
        "medai {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Run `medai`, assert failure without a panic, return stderr.
pub fn err(args: &[&str]) -> String {
    let out = medai(args);
    assert!(!out.status.success(), "medai {args:?} should fail");
    let e = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!e.contains("panicked"), "panic instead of an error: {e}");
    e
}

/// A running `medai serve` child on a free loopback port, with a `predict` token and an `admin`
/// token in `auth.json` and its audit log in `audit.sqlite` (both under the given directory).
pub struct ServeProcess {
    /// The child process.
    pub child: std::process::Child,
    /// `host:port` it listens on.
    pub addr: String,
    /// The predict-role token.
    pub token: String,
    /// The auth file.
    pub auth: std::path::PathBuf,
    /// The audit log: a SQLite path or a PostgreSQL URL.
    pub audit: String,
    /// The first line the server printed (`listening on …`).
    pub started: String,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStderr>>,
}

/// Start `medai serve --model M…` (each `M` as `[NAME=]BUNDLE`) with fresh tokens.
pub fn serve_start(dir: &std::path::Path, models: &[&str]) -> ServeProcess {
    let audit = dir.join("audit.sqlite");
    serve_start_with(dir, models, audit.to_str().unwrap(), false)
}

/// Start `medai serve` with the audit log at `audit` (a SQLite path or a PostgreSQL URL), given
/// by `--audit` or, with `via_env`, by the `MEDAI_AUDIT` environment variable. Replicas started
/// in the same directory share its tokens.
pub fn serve_start_with(
    dir: &std::path::Path,
    models: &[&str],
    audit: &str,
    via_env: bool,
) -> ServeProcess {
    use std::io::BufRead;
    let auth = dir.join("auth.json");
    let a = auth.to_str().unwrap();
    let saved = dir.join("predict.token");
    let token = match std::fs::read_to_string(&saved) {
        Ok(t) => t,
        Err(_) => {
            let t = ok(&[
                "token", "create", "--auth", a, "--role", "predict", "--name", "tests",
            ])
            .trim()
            .to_string();
            ok(&[
                "token", "create", "--auth", a, "--role", "admin", "--name", "ops",
            ]);
            std::fs::write(&saved, &t).unwrap();
            t
        }
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_medai"));
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--auth", a]);
    if via_env {
        cmd.env("MEDAI_AUDIT", audit);
    } else {
        cmd.env_remove("MEDAI_AUDIT").args(["--audit", audit]);
    }
    for m in models {
        cmd.args(["--model", m]);
    }
    let mut child = cmd.stderr(std::process::Stdio::piped()).spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_string();
    ServeProcess {
        child,
        addr,
        token,
        auth,
        audit: audit.to_string(),
        started: first,
        lines,
    }
}

impl ServeProcess {
    /// `Authorization` header value for the predict token.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// SIGTERM, then check the graceful shutdown and that the audit chain verifies.
    pub fn stop(mut self) {
        // The shell's built-in kill: no procps needed.
        let killed = Command::new("sh")
            .args(["-c", &format!("kill -TERM {}", self.child.id())])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = self.child.wait().unwrap();
        let rest: Vec<String> = self.lines.by_ref().map_while(Result::ok).collect();
        assert!(status.success(), "{rest:?}");
        assert!(rest.iter().any(|l| l.contains("shut down")), "{rest:?}");
        let verified = ok(&["audit", "verify", "--audit", &self.audit]);
        assert!(verified.contains("audit chain intact"), "{verified}");
    }
}

impl Drop for ServeProcess {
    /// A failed test never leaves the server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServeProcess {
    /// `tests/serve/tritonclient_strings.py` against served model `model`: `expected` holds the
    /// strings to send and the outputs `medai predict` gave for them.
    pub fn triton_strings_check(
        &self,
        dir: &std::path::Path,
        model: &str,
        expected: serde_json::Value,
    ) {
        let path = dir.join(format!("{model}-expected.json"));
        std::fs::write(&path, expected.to_string()).unwrap();
        python_check(
            "tritonclient.http",
            &[
                "tests/serve/tritonclient_strings.py",
                &self.addr,
                &self.token,
                model,
                path.to_str().unwrap(),
            ],
        );
    }
}

/// One HTTP/1.1 request on a fresh connection; returns (status, body).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to medai serve");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(!head.to_ascii_lowercase().contains("chunked"), "{head}");
    (status, raw[end + 4..].to_vec())
}

/// Run a Python check script when its tools are installed; CI (`MEDAI_REQUIRE_INTEGRATION=1`)
/// requires them.
pub fn python_check(module: &str, args: &[&str]) {
    let have = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
        && (module != "selenium" || std::path::Path::new("/usr/bin/chromedriver").exists());
    if !have {
        assert!(
            std::env::var_os("MEDAI_REQUIRE_INTEGRATION").is_none(),
            "{module} (or chromium-driver) is not installed; .ci/run installs it"
        );
        eprintln!("SKIPPED {args:?}: python module {module} (or chromium-driver) not installed");
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("python3")
        .args(args)
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
