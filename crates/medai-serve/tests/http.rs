//! The service over real HTTP on loopback, with a stand-in model: the fault test (1,000
//! malformed requests of 15 kinds, each with its 4xx, the server still serving, the audit chain
//! intact), limits (concurrency 503 + Retry-After, timeout), graceful shutdown, and the binary
//! tensor extension byte for byte.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use medai_data::RawImage;
use medai_serve::predictor::{InputKind, Inputs, OutputKind, TextExplanation, TokenWeight};
use medai_serve::{AuthFile, BatchConfig, ModelMeta, Predictor, Role, ServeConfig, Service};

/// p(class 1) = mean of the input; sleeps `delay` per forward pass.
struct Mean {
    meta: ModelMeta,
    delay: Duration,
}

impl Predictor for Mean {
    fn meta(&self) -> &ModelMeta {
        &self.meta
    }
    fn preprocess(&self, img: &RawImage) -> Vec<f32> {
        // Grey 4×4 by nearest neighbour, rescaled to 0..1.
        let (h, w) = (self.meta.height, self.meta.width);
        let mut out = Vec::with_capacity(h * w);
        for y in 0..h {
            for x in 0..w {
                let (sy, sx) = (y * img.height / h, x * img.width / w);
                let i = (sy * img.width + sx) * img.channels;
                out.push(img.pixels[i] / 255.0);
            }
        }
        out
    }
    fn predict(&self, x: &Inputs) -> Result<Vec<Vec<f64>>, String> {
        let Inputs::Tensor { values: x, n } = x else {
            return Err("images only".into());
        };
        std::thread::sleep(self.delay);
        let per = x.len() / n;
        Ok(x.chunks(per)
            .map(|c| {
                let m = c.iter().map(|&v| f64::from(v)).sum::<f64>() / per as f64;
                let p = m.clamp(0.0, 1.0);
                vec![1.0 - p, p]
            })
            .collect())
    }
    fn explain(&self, _: &RawImage, _: usize, _: &str) -> Result<Vec<u8>, String> {
        // A 1×1 PNG stands in for the overlay.
        let mut png = Vec::new();
        image::GrayImage::from_pixel(1, 1, image::Luma([9]))
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(|e| e.to_string())?;
        Ok(png)
    }
}

/// The stand-in model served as `mean`: 4×4 grey input, classes low/high.
fn mean_model(delay: Duration) -> Arc<dyn Predictor> {
    Arc::new(Mean {
        meta: ModelMeta {
            name: "mean".into(),
            task: "image-classification".into(),
            input: InputKind::Image,
            output: OutputKind::Classes,
            classes: vec!["low".into(), "high".into()],
            channels: 1,
            height: 4,
            width: 4,
            threshold: 0.5,
            temperature: 1.0,
            bundle_sha256: "ab".repeat(32),
            card_markdown: "# Model card\n".into(),
        },
        delay,
    })
}

/// A text stand-in served as `words`: p(urgent) = the share of words that are "pain".
struct Words(ModelMeta);

impl Predictor for Words {
    fn meta(&self) -> &ModelMeta {
        &self.0
    }
    fn predict(&self, x: &Inputs) -> Result<Vec<Vec<f64>>, String> {
        let Inputs::Strings(docs) = x else {
            return Err("strings only".into());
        };
        Ok(docs
            .iter()
            .map(|d| {
                let w: Vec<&str> = d.split_whitespace().collect();
                let p = w.iter().filter(|&&t| t == "pain").count() as f64 / w.len() as f64;
                vec![1.0 - p, p]
            })
            .collect())
    }
    fn explain_text(&self, text: &str, _: usize) -> Result<TextExplanation, String> {
        let mut tokens = Vec::new();
        let mut at = 0;
        for w in text.split_whitespace() {
            let start = at + text[at..].find(w).unwrap();
            at = start + w.len();
            tokens.push(TokenWeight {
                token: w.into(),
                start,
                end: at,
                weight: if w == "pain" { 1.0 } else { 0.0 },
            });
        }
        Ok(TextExplanation {
            method: "attention".into(),
            tokens,
        })
    }
}

/// A molecule stand-in served as `atoms`: predicts the number of carbons, uncertainty 0.1;
/// refuses SMILES with letters other than C, N, O.
struct Atoms(ModelMeta);

impl Predictor for Atoms {
    fn meta(&self) -> &ModelMeta {
        &self.0
    }
    fn check(&self, smiles: &str) -> Result<(), String> {
        match smiles.find(|c: char| c.is_ascii_alphabetic() && !"CNO".contains(c)) {
            Some(i) => Err(format!("SMILES {smiles:?} does not parse at {i}")),
            None => Ok(()),
        }
    }
    fn predict(&self, x: &Inputs) -> Result<Vec<Vec<f64>>, String> {
        let Inputs::Strings(s) = x else {
            return Err("strings only".into());
        };
        Ok(s.iter()
            .map(|m| vec![m.matches('C').count() as f64, 0.1])
            .collect())
    }
}

fn string_models() -> Vec<Arc<dyn Predictor>> {
    let meta = |name: &str, input, output, classes: &[&str]| ModelMeta {
        name: name.into(),
        task: "t".into(),
        input,
        output,
        classes: classes.iter().map(|c| c.to_string()).collect(),
        channels: 0,
        height: 0,
        width: 0,
        threshold: 0.5,
        temperature: 1.0,
        bundle_sha256: "cd".repeat(32),
        card_markdown: String::new(),
    };
    vec![
        Arc::new(Words(meta(
            "words",
            InputKind::Text,
            OutputKind::Classes,
            &["calm", "urgent"],
        ))),
        Arc::new(Atoms(meta(
            "atoms",
            InputKind::Smiles,
            OutputKind::Values,
            &["carbons"],
        ))),
    ]
}

struct Server {
    addr: SocketAddr,
    predict: String,
    admin: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(dir: &Path, delay: Duration, cfg: ServeConfig) -> Server {
        Server::start_with(dir, delay, cfg, None)
    }

    fn start_models(dir: &Path, models: Vec<Arc<dyn Predictor>>, cfg: ServeConfig) -> Server {
        Server::launch(dir, models, cfg, None)
    }

    /// `tls`: certificate and key PEM files for HTTPS.
    fn start_with(
        dir: &Path,
        delay: Duration,
        cfg: ServeConfig,
        tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    ) -> Server {
        Server::launch(dir, vec![mean_model(delay)], cfg, tls)
    }

    fn launch(
        dir: &Path,
        models: Vec<Arc<dyn Predictor>>,
        cfg: ServeConfig,
        tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    ) -> Server {
        let mut auth = AuthFile::new();
        let predict = auth.create_token("tests", Role::Predict);
        let admin = auth.create_token("ops", Role::Admin);
        let audit = dir.join("audit.sqlite");
        let service = Arc::new(Service::new(models, auth, Some(audit.into()), cfg).unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                tx.send(l.local_addr().unwrap()).unwrap();
                let stop = async {
                    let _ = stopped.await;
                };
                match tls {
                    Some((cert, key)) => service.clone().run_tls(l, &cert, &key, stop).await,
                    None => {
                        l.set_nonblocking(true).unwrap();
                        let l = tokio::net::TcpListener::from_std(l).unwrap();
                        service.clone().run(l, stop).await
                    }
                }
                .unwrap();
            });
            drop(rt);
            service.close_audit();
        });
        Server {
            addr: rx.recv().unwrap(),
            predict,
            admin,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Graceful shutdown: stop accepting, finish in-flight requests, flush the audit log.
    fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A response: status, headers (lower-case names), body.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    // The server may answer (413) before reading a large body: ignore a reset while writing.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head: {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(i) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let n = usize::from_str_radix(std::str::from_utf8(&b[..i]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + n]);
        b = &b[i + 2 + n + 2..];
    }
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn infer_json(values: &[f32]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": "q1",
        "inputs": [{"name": "image", "shape": [values.len() / 16, 1, 4, 4], "datatype": "FP32", "data": values}]
    }))
    .unwrap()
}

fn png(w: u32, h: u32, v: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::GrayImage::from_pixel(w, h, image::Luma([v]))
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn cfg() -> ServeConfig {
    ServeConfig {
        max_body_bytes: 64 << 10,
        max_pixels: 10_000,
        ..ServeConfig::default()
    }
}

#[test]
fn json_binary_and_upload_inference() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), Duration::ZERO, cfg());
    let auth = bearer(&srv.predict);
    let h = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];

    // JSON tensors: two images, means 0.25 and 0.75.
    let mut x = vec![0.25f32; 16];
    x.extend([0.75f32; 16]);
    let r = http(
        srv.addr,
        "POST",
        "/v2/models/mean/infer",
        &h,
        &infer_json(&x),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["id"], "q1");
    assert_eq!(v["model_name"], "mean");
    assert_eq!(v["outputs"][0]["name"], "probabilities");
    assert_eq!(v["outputs"][0]["shape"], serde_json::json!([2, 2]));
    assert_eq!(
        v["outputs"][0]["data"],
        serde_json::json!([0.75, 0.25, 0.25, 0.75])
    );
    assert_eq!(v["outputs"][1]["data"], serde_json::json!(["low", "high"]));

    // Binary extension: the same tensor as raw bytes, outputs back as raw bytes.
    let head = br#"{"inputs":[{"name":"image","shape":[2,1,4,4],"datatype":"FP32","parameters":{"binary_data_size":128}}],"outputs":[{"name":"probabilities","parameters":{"binary_data":true}},{"name":"label","parameters":{"binary_data":true}}]}"#;
    let mut body = head.to_vec();
    body.extend(x.iter().flat_map(|v| v.to_le_bytes()));
    let hl = head.len().to_string();
    let r = http(
        srv.addr,
        "POST",
        "/v2/models/mean/versions/1/infer",
        &[
            ("Authorization", auth.as_str()),
            ("Inference-Header-Content-Length", hl.as_str()),
            ("Content-Type", "application/octet-stream"),
        ],
        &body,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let n: usize = r
        .header("inference-header-content-length")
        .unwrap()
        .parse()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&r.body[..n]).unwrap();
    assert_eq!(json["outputs"][0]["parameters"]["binary_data_size"], 16);
    assert_eq!(
        json["outputs"][1]["parameters"]["binary_data_size"],
        4 + 3 + 4 + 4
    );
    let bin = &r.body[n..];
    let probs: Vec<f32> = bin[..16]
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(probs, vec![0.75, 0.25, 0.25, 0.75]);
    assert_eq!(&bin[16..], b"\x03\0\0\0low\x04\0\0\0high");

    // UINT8 raw pixels of another size: preprocessed by the model (8×8 of value 204 → 0.8).
    let body = serde_json::to_vec(&serde_json::json!({"inputs": [{"name": "image",
        "shape": [1, 8, 8], "datatype": "UINT8", "data": vec![204u8; 64]}]}))
    .unwrap();
    let r = http(srv.addr, "POST", "/v2/models/mean/infer", &h, &body);
    assert_eq!(r.status, 200);
    let p = r.json()["outputs"][0]["data"][1].as_f64().unwrap();
    assert!((p - 0.8).abs() < 1e-6, "{p}");

    // BYTES: encoded files, base64 in JSON (an 8×8 PNG of value 51 → 0.2).
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(png(8, 8, 51));
    let body = serde_json::to_vec(&serde_json::json!({"inputs": [{"name": "image",
        "shape": [2], "datatype": "BYTES", "data": [b64, b64]}]}))
    .unwrap();
    let r = http(srv.addr, "POST", "/v2/models/mean/infer", &h, &body);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["outputs"][0]["shape"], serde_json::json!([2, 2]));
    assert!((v["outputs"][0]["data"][3].as_f64().unwrap() - 0.2).abs() < 1e-6);

    // Upload: a PNG → probabilities, label, decision, overlay.
    let r = http(
        srv.addr,
        "POST",
        "/v1/models/mean/predict?explain=gradcam",
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "image/png"),
        ],
        &png(8, 8, 51),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert!((v["probabilities"]["high"].as_f64().unwrap() - 0.2).abs() < 1e-6);
    assert_eq!(v["label"], "low");
    assert_eq!(v["decision"], "negative");
    assert_eq!(v["explanation"]["method"], "gradcam");
    assert!(
        v["explanation"]["overlay_png_base64"]
            .as_str()
            .unwrap()
            .starts_with("iVBOR")
    );

    // Metadata, model list, card, page, health (no token), server metadata.
    let r = http(srv.addr, "GET", "/v2/models/mean", &h, b"");
    assert_eq!(
        r.json()["inputs"][0]["shape"],
        serde_json::json!([-1, 1, 4, 4])
    );
    assert_eq!(
        http(srv.addr, "GET", "/v1/models", &h, b"").json()["models"][0]["name"],
        "mean"
    );
    assert_eq!(
        http(srv.addr, "GET", "/v1/models/mean/card", &h, b"").body,
        b"# Model card\n"
    );
    let page = http(srv.addr, "GET", "/", &[], b"");
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("<html"));
    assert_eq!(
        http(srv.addr, "GET", "/v2/health/ready", &[], b"").status,
        200
    );
    assert_eq!(
        http(
            srv.addr,
            "GET",
            "/v2/models/mean/versions/1/ready",
            &[],
            b""
        )
        .status,
        200
    );
    let v = http(srv.addr, "GET", "/v2", &h, b"").json();
    assert_eq!(v["extensions"], serde_json::json!(["binary_tensor_data"]));
}

#[test]
fn text_and_smiles_models_answer_strings() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start_models(dir.path(), string_models(), cfg());
    let auth = bearer(&srv.predict);
    let h = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let infer = |model: &str, body: &serde_json::Value| {
        let path = format!("/v2/models/{model}/infer");
        http(
            srv.addr,
            "POST",
            &path,
            &h,
            &serde_json::to_vec(body).unwrap(),
        )
    };
    // Metadata: a BYTES input named after what the model reads.
    let m = http(srv.addr, "GET", "/v2/models/words", &h, b"").json();
    assert_eq!(
        m["inputs"][0],
        serde_json::json!({"name": "text", "datatype": "BYTES", "shape": [-1]})
    );
    let m = http(srv.addr, "GET", "/v2/models/atoms", &h, b"").json();
    assert_eq!(m["inputs"][0]["name"], "smiles");
    assert_eq!(m["outputs"][1]["name"], "uncertainty");

    // Documents as JSON strings (what tritonclient sends), shape [N, 1].
    let body = serde_json::json!({"inputs": [{"name": "text", "shape": [2, 1], "datatype": "BYTES",
        "data": ["chest pain pain é", "a calm day"]}]});
    let r = infer("words", &body);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(
        v["outputs"][0]["data"],
        serde_json::json!([0.5, 0.5, 1.0, 0.0])
    );
    assert_eq!(
        v["outputs"][1]["data"],
        serde_json::json!(["urgent", "calm"])
    );
    // The same documents in the binary extension.
    let docs: [&[u8]; 2] = ["chest pain pain é".as_bytes(), b"a calm day"];
    let bin: Vec<u8> = docs
        .iter()
        .flat_map(|d| {
            (d.len() as u32)
                .to_le_bytes()
                .into_iter()
                .chain(d.iter().copied())
        })
        .collect();
    let head = serde_json::to_vec(
        &serde_json::json!({"inputs": [{"name": "text", "shape": [2],
        "datatype": "BYTES", "parameters": {"binary_data_size": bin.len()}}]}),
    )
    .unwrap();
    let hl = head.len().to_string();
    let r = http(
        srv.addr,
        "POST",
        "/v2/models/words/infer",
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/octet-stream"),
            ("Inference-Header-Content-Length", hl.as_str()),
        ],
        &[head, bin].concat(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["outputs"], v["outputs"]);

    // /v1 predict: the document itself, with an explanation.
    let th = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "text/plain; charset=utf-8"),
    ];
    let r = http(
        srv.addr,
        "POST",
        "/v1/models/words/predict?explain=true",
        &th,
        b"pain pain  ok",
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["label"], "urgent");
    assert_eq!(v["decision"], "positive");
    assert_eq!(v["input"], "text");
    assert_eq!(v["explanation"]["method"], "attention");
    assert_eq!(
        v["explanation"]["tokens"][2],
        serde_json::json!({"token": "ok", "start": 11, "end": 13, "weight": 0.0})
    );

    // Molecules: prediction and uncertainty per target; a bad SMILES is the caller's error.
    let body = serde_json::json!({"inputs": [{"name": "smiles", "shape": [2], "datatype": "BYTES",
        "data": ["CCO", "c1ccccc1"]}]});
    let r = infer("atoms", &body);
    assert_eq!(r.status, 400);
    let e = r.json()["error"].as_str().unwrap().to_string();
    assert!(
        e.contains("input \"smiles\"[1]") && e.contains("does not parse"),
        "{e}"
    );
    let body = serde_json::json!({"inputs": [{"name": "smiles", "shape": [2], "datatype": "BYTES",
        "data": ["CCO", "CCCC"]}]});
    let r = infer("atoms", &body);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["outputs"][0]["name"], "prediction");
    assert_eq!(v["outputs"][0]["shape"], serde_json::json!([2, 1]));
    assert_eq!(v["outputs"][0]["data"], serde_json::json!([2.0, 4.0]));
    assert_eq!(v["outputs"][1]["name"], "uncertainty");
    let r = http(srv.addr, "POST", "/v1/models/atoms/predict", &th, b"CCC");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["prediction"]["carbons"], 3.0);

    // Each wrong input gets its 400/415 and a message that names the problem.
    // (path, headers, body, status, words the error must contain)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "/v1/models/words/predict",
            th.to_vec(),
            vec![b'a', 0xff, b'b'],
            400,
            "not UTF-8",
        ),
        (
            "/v1/models/words/predict",
            th.to_vec(),
            b"  \n".to_vec(),
            400,
            "text is empty",
        ),
        (
            "/v1/models/words/predict?explain=gradcam",
            th.to_vec(),
            b"pain".to_vec(),
            400,
            "explain=gradcam",
        ),
        (
            "/v1/models/atoms/predict?explain=true",
            th.to_vec(),
            b"CC".to_vec(),
            400,
            "not available for smiles",
        ),
        (
            "/v1/models/atoms/predict",
            th.to_vec(),
            b"CZ".to_vec(),
            400,
            "does not parse",
        ),
        (
            "/v1/models/words/predict",
            vec![
                ("Authorization", auth.as_str()),
                ("Content-Type", "image/png"),
            ],
            png(2, 2, 0),
            415,
            "text/plain",
        ),
        (
            "/v2/models/words/infer",
            h.to_vec(),
            serde_json::to_vec(
                &serde_json::json!({"inputs": [{"name": "text", "shape": [1, 1, 4, 4],
                "datatype": "FP32", "data": vec![0.0f32; 16]}]}),
            )
            .unwrap(),
            400,
            "takes text strings",
        ),
        (
            "/v2/models/words/infer",
            h.to_vec(),
            serde_json::to_vec(
                &serde_json::json!({"inputs": [{"name": "text", "shape": [1, 2],
                "datatype": "BYTES", "data": ["a", "b"]}]}),
            )
            .unwrap(),
            400,
            "shape [N] or [N, 1]",
        ),
        (
            "/v2/models/words/infer",
            h.to_vec(),
            serde_json::to_vec(
                &serde_json::json!({"inputs": [{"name": "text", "shape": [1],
                "datatype": "BYTES", "data": ["x"]}], "outputs": [{"name": "values"}]}),
            )
            .unwrap(),
            400,
            "outputs: probabilities, label",
        ),
    ];
    for (path, hs, body, status, needle) in cases {
        let r = http(srv.addr, "POST", path, &hs, &body);
        assert_eq!(
            r.status,
            status,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let e = r.json()["error"].as_str().unwrap().to_string();
        assert!(e.contains(needle), "{path}: {e}");
    }
    drop(srv);
    // Every request was audited, the chain verifies, and no document reached the log.
    let v = medai_serve::audit::verify(dir.path().join("audit.sqlite")).unwrap();
    assert!(v.rows >= 17, "{}", v.rows);
    let db = std::fs::read(dir.path().join("audit.sqlite")).unwrap();
    for needle in [&b"chest pain"[..], b"calm day", b"CCCC"] {
        assert!(!db.windows(needle.len()).any(|w| w == needle));
    }
}

#[test]
fn a_thousand_malformed_requests_get_their_4xx_and_the_service_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = Server::start(dir.path(), Duration::ZERO, cfg());
    let good = bearer(&srv.predict);
    let g = good.as_str();
    let json_h = [("Authorization", g), ("Content-Type", "application/json")];
    let infer = "/v2/models/mean/infer";
    let predict = "/v1/models/mean/predict";
    let dicom = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/dicom/CT_small.dcm"),
    )
    .ok();
    let truncated_dicom = dicom
        .as_ref()
        .map(|d| d[..d.len() / 3].to_vec())
        .unwrap_or_else(|| {
            let mut d = vec![0u8; 128];
            d.extend(b"DICM\x02\x00\x00\x00UL\x04\x00");
            d
        });
    let big = vec![b' '; 100 << 10];
    let big_png = png(200, 200, 1); // 40 000 pixels > the 10 000 limit
    let bin_head = br#"{"inputs":[{"name":"image","shape":[1,1,4,4],"datatype":"FP32","parameters":{"binary_data_size":64}}]}"#;
    let mut short_bin = bin_head.to_vec();
    short_bin.extend([0u8; 10]);
    let short_hl = bin_head.len().to_string();
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a str,
        Vec<(&'a str, &'a str)>,
        Vec<u8>,
        u16,
    );
    let cases: Vec<Case> = vec![
        ("bad JSON", "POST", infer, json_h.to_vec(), b"{\"inputs\": [".to_vec(), 400),
        ("wrong shape", "POST", infer, json_h.to_vec(),
            serde_json::to_vec(&serde_json::json!({"inputs": [{"name": "image", "shape": [1, 1, 5, 5], "datatype": "FP32", "data": vec![0.5; 25]}]})).unwrap(), 400),
        ("wrong datatype", "POST", infer, json_h.to_vec(),
            serde_json::to_vec(&serde_json::json!({"inputs": [{"name": "image", "shape": [1, 1, 4, 4], "datatype": "INT64", "data": vec![1; 16]}]})).unwrap(), 400),
        ("data/shape mismatch", "POST", infer, json_h.to_vec(),
            serde_json::to_vec(&serde_json::json!({"inputs": [{"name": "image", "shape": [1, 1, 4, 4], "datatype": "FP32", "data": [1.0]}]})).unwrap(), 400),
        ("unknown output", "POST", infer, json_h.to_vec(),
            serde_json::to_vec(&serde_json::json!({"inputs": [{"name": "image", "shape": [1, 1, 4, 4], "datatype": "FP32", "data": vec![0.5; 16]}], "outputs": [{"name": "logits"}]})).unwrap(), 400),
        ("binary section too short", "POST", infer,
            vec![("Authorization", g), ("Inference-Header-Content-Length", short_hl.as_str())], short_bin.clone(), 400),
        ("huge body", "POST", infer, json_h.to_vec(), big.clone(), 413),
        ("truncated PNG", "POST", predict, vec![("Authorization", g), ("Content-Type", "image/png")],
            png(8, 8, 3)[..40].to_vec(), 400),
        ("truncated DICOM", "POST", predict, vec![("Authorization", g), ("Content-Type", "application/dicom")],
            truncated_dicom.clone(), 400),
        ("image over the pixel limit", "POST", predict, vec![("Authorization", g), ("Content-Type", "image/png")], big_png.clone(), 400),
        ("not an image", "POST", predict, vec![("Authorization", g), ("Content-Type", "application/octet-stream")], b"hello".to_vec(), 400),
        ("wrong content type", "POST", infer, vec![("Authorization", g), ("Content-Type", "text/plain")], b"{}".to_vec(), 415),
        ("missing token", "POST", infer, vec![("Content-Type", "application/json")], infer_json(&[0.5; 16]), 401),
        ("invalid token", "POST", infer, vec![("Authorization", "Bearer mdai_forged"), ("Content-Type", "application/json")], infer_json(&[0.5; 16]), 401),
        ("predict token on /metrics", "GET", "/metrics", vec![("Authorization", g)], Vec::new(), 403),
        ("unknown model", "POST", "/v2/models/nope/infer", json_h.to_vec(), infer_json(&[0.5; 16]), 404),
        ("unknown version", "GET", "/v2/models/mean/versions/7", vec![("Authorization", g)], Vec::new(), 404),
    ];
    assert!(cases.len() >= 10);
    let mut sent = 0;
    for i in 0..1000 {
        let (kind, method, path, headers, body, want) = &cases[i % cases.len()];
        let r = http(srv.addr, method, path, headers, body);
        assert_eq!(
            r.status,
            *want,
            "{kind}: {}",
            String::from_utf8_lossy(&r.body)
        );
        if r.status != 413 {
            let v = r.json();
            let msg = v["error"].as_str().unwrap_or_else(|| panic!("{kind}: {v}"));
            assert!(!msg.is_empty(), "{kind}");
        }
        if r.status == 401 {
            assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{kind}");
        }
        sent += 1;
    }
    // Still serving.
    let r = http(srv.addr, "POST", infer, &json_h, &infer_json(&[0.5; 16]));
    assert_eq!(r.status, 200);
    // /metrics (admin) counted them.
    let admin = bearer(&srv.admin);
    let m = http(
        srv.addr,
        "GET",
        "/metrics",
        &[("Authorization", admin.as_str())],
        b"",
    );
    assert_eq!(m.status, 200);
    let text = String::from_utf8_lossy(&m.body).to_string();
    assert!(
        text.contains("medai_requests_total{endpoint=\"POST /v2/models/{name}/infer\",model=\"mean\",status=\"400\"}"),
        "{text}"
    );
    assert!(text.contains("medai_batch_size"));
    srv.shutdown();
    // Every request (the malformed ones, the good one, /metrics) is one audit row; the chain holds.
    let v = medai_serve::audit::verify(dir.path().join("audit.sqlite")).unwrap();
    assert_eq!(v.rows, sent + 2);
    // No token, pixel value or upload byte is in the log.
    let db = std::fs::read(dir.path().join("audit.sqlite")).unwrap();
    let hay = String::from_utf8_lossy(&db);
    assert!(!hay.contains(&srv.predict[5..]) && !hay.contains("mdai_forged"));
}

#[test]
fn saturation_timeout_and_graceful_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = Server::start(
        dir.path(),
        Duration::from_millis(600),
        ServeConfig {
            max_concurrency: 1,
            timeout: Duration::from_millis(1500),
            batch: BatchConfig::default(),
            ..cfg()
        },
    );
    let auth = bearer(&srv.predict);
    let addr = srv.addr;
    let a2 = auth.clone();
    let slow = std::thread::spawn(move || {
        http(
            addr,
            "POST",
            "/v2/models/mean/infer",
            &[("Authorization", a2.as_str())],
            &infer_json(&[0.5; 16]),
        )
    });
    std::thread::sleep(Duration::from_millis(200));
    // The one slot is taken: 503 with Retry-After.
    let r = http(
        addr,
        "GET",
        "/v1/models",
        &[("Authorization", auth.as_str())],
        b"",
    );
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(slow.join().unwrap().status, 200);

    // A request in flight when shutdown starts still completes.
    let a3 = auth.clone();
    let inflight = std::thread::spawn(move || {
        http(
            addr,
            "POST",
            "/v2/models/mean/infer",
            &[("Authorization", a3.as_str())],
            &infer_json(&[0.5; 16]),
        )
    });
    std::thread::sleep(Duration::from_millis(200));
    srv.shutdown();
    let r = inflight.join().unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
    let v = medai_serve::audit::verify(dir.path().join("audit.sqlite")).unwrap();
    assert_eq!(v.rows, 3);
}

#[test]
fn requests_over_the_time_limit_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(
        dir.path(),
        Duration::from_millis(800),
        ServeConfig {
            timeout: Duration::from_millis(200),
            ..cfg()
        },
    );
    let auth = bearer(&srv.predict);
    let t = std::time::Instant::now();
    let r = http(
        srv.addr,
        "POST",
        "/v2/models/mean/infer",
        &[("Authorization", auth.as_str())],
        &infer_json(&[0.5; 16]),
    );
    assert_eq!(r.status, 503);
    assert!(r.json()["error"].as_str().unwrap().contains("longer than"));
    assert!(t.elapsed() < Duration::from_millis(700));
}

#[test]
fn tls_from_pem_files() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let srv = Server::start_with(dir.path(), Duration::ZERO, cfg(), Some((cert, key)));

    // A rustls client that trusts only this certificate.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).unwrap();
    let config = Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let sock = TcpStream::connect(srv.addr).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let req = format!(
        "GET /v1/models HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        srv.predict
    );
    tls.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"name\":\"mean\""), "{text}");

    // Plain HTTP on the TLS port gets no answer.
    let mut plain = TcpStream::connect(srv.addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    plain
        .write_all(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(!String::from_utf8_lossy(&got).contains("200 OK"));
}

#[test]
fn a_missing_certificate_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let svc = Arc::new(
        Service::new(
            vec![mean_model(Duration::ZERO)],
            AuthFile::new(),
            None,
            cfg(),
        )
        .unwrap(),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cert = dir.path().join("nope.pem");
    let e = rt
        .block_on(svc.run_tls(l, &cert, &cert, async {}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope.pem"), "{e}");
}
