//! Harness of the service tests: a real `nats-server` (JetStream, file storage in a temporary
//! directory, a free loopback port), `host-eval serve` / `worker` child processes, a minimal
//! HTTP/1.1 client over `TcpStream` (so a test controls every header and byte), and the vendor
//! and hospital fixtures (model, key sets, tenants, box-encoded batches). Every wait has a
//! deadline and every process is killed on drop.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
pub mod common;

#[allow(unused_imports)] // used by the embedded tests, not by the NATS ones
pub use common::adrenal_dataset;
pub use common::{ok, s, TempDir};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_host-eval");

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Polls `f` every 100 ms until it returns `Some`, failing the test after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process killed (SIGKILL) and reaped on drop.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    pub fn spawn(name: &str, args: &[&str], log: &Path) -> Self {
        let f = std::fs::File::create(log).unwrap();
        let child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::from(f))
            .spawn()
            .unwrap();
        Self { child, name: name.into() }
    }
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill").args([sig, &self.pid().to_string()]).status().unwrap();
        assert!(st.success(), "kill {sig} {}", self.name);
    }
    /// Waits for the process to exit; its exit status.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        wait_for(&format!("{} to exit", self.name), limit, || self.child.try_wait().unwrap())
    }
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A nats-server with JetStream on a free loopback port, its store in `dir`.
pub struct Nats {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

fn nats_bin() -> String {
    ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
        .iter()
        .find(|p| Path::new(p).exists())
        .map_or("nats-server".to_string(), |p| p.to_string())
}

impl Nats {
    pub fn start(dir: &Path) -> Self {
        let mut n = Self {
            port: free_port(),
            dir: dir.to_path_buf(),
            child: None,
        };
        n.launch();
        n
    }
    fn launch(&mut self) {
        std::fs::create_dir_all(&self.dir).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("nats.log"))
            .unwrap();
        let child = Command::new(nats_bin())
            .args(["-js", "-sd", s(&self.dir), "-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("nats-server is not installed (apt-get install nats-server; scripts/test-all.sh does it)");
        self.child = Some(child);
        let port = self.port;
        wait_for("nats-server to listen", Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
    }
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    /// Kills the server (SIGKILL) and starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One HTTP/1.1 exchange on a fresh connection: (status, headers lower-cased, body).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
    extra: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let mut has_len = false;
    for (k, v) in extra {
        has_len |= k.eq_ignore_ascii_case("content-length");
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_len {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    c.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) and close before reading a large body: ignore write errors.
    let _ = c.write_all(body);
    let mut raw = Vec::new();
    let _ = c.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("no HTTP header in answer");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked")) {
        body = dechunk(&body);
    }
    (status, headers, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(p) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..p]).trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[p + 2..p + 2 + n]);
        b = &b[p + 2 + n + 2..];
    }
    out
}

pub fn json(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(b)))
}

/// Waits until `GET /healthz` answers 200.
pub fn wait_healthy(port: u16, limit: Duration) {
    wait_for("the API to answer /healthz", limit, || {
        TcpStream::connect(("127.0.0.1", port)).ok()?;
        (http(port, "GET", "/healthz", None, b"", &[]).0 == 200).then_some(())
    });
}

/// The vendor's model (phantoms; quick to train).
pub fn train_model(dir: &Path) -> PathBuf {
    let model = dir.join("model.json");
    ok(&["train", "--per-class", "60", "--out", s(&model)]);
    model
}

/// A hospital: its key set (private-n15), token file, and batches.
pub struct Hospital {
    pub name: String,
    pub dir: PathBuf,
    pub keys: PathBuf,
    pub token_file: PathBuf,
    pub token: String,
    /// The batch each submitted job came from (its record sits beside it).
    pub jobs: std::sync::Mutex<std::collections::HashMap<String, PathBuf>>,
}

impl Hospital {
    pub fn new(root: &Path, name: &str, _index: u64, tenants: &Path) -> Self {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let keys = dir.join("keys");
        ok(&["keygen", "--preset", "private-n15", "--out", s(&keys)]);
        ok(&["evalkeys", "--keys", s(&keys), "--relin-only"]);
        let token = ok(&["tenant", "add", name, "--tenants", s(tenants)]).trim().to_string();
        assert_eq!(token.len(), 64, "token {token}");
        let token_file = dir.join("token");
        std::fs::write(&token_file, format!("{token}\n")).unwrap();
        Self {
            name: name.into(),
            dir,
            keys,
            token_file,
            token,
            jobs: Default::default(),
        }
    }

    pub fn conn<'a>(&'a self, server: &'a str) -> Vec<&'a str> {
        vec!["--server", server, "--token-file", s(&self.token_file)]
    }

    /// Fetches the profile from the service and encrypts `features` (already in the box) as
    /// batch `tag`; returns the batch path and the plaintext model's argmax per patient.
    pub fn batch(&self, server: &str, model: &Path, tag: &str, features: &[[f64; 8]]) -> (PathBuf, Vec<u64>) {
        let profile = self.dir.join("profile.json");
        if !profile.exists() {
            let mut a = vec!["fetch-profile"];
            a.extend(self.conn(server));
            a.extend(["--keys", s(&self.keys), "--out", s(&profile)]);
            ok(&a);
        }
        let feats = self.dir.join(format!("{tag}.json"));
        std::fs::write(&feats, serde_json::to_vec(&features.to_vec()).unwrap()).unwrap();
        let batch = self.dir.join(format!("{tag}.clhe"));
        ok(&[
            "encrypt",
            "--keys",
            s(&self.keys),
            "--profile",
            s(&profile),
            "--input",
            s(&feats),
            "--out",
            s(&batch),
        ]);
        let p: Value = serde_json::from_str(&ok(&["predict", "--model", s(model), "--input", s(&feats), "--json"])).unwrap();
        let want = p["patients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["class"].as_u64().unwrap())
            .collect();
        (batch, want)
    }

    pub fn submit(&self, server: &str, batch: &Path) -> String {
        let mut a = vec!["submit"];
        a.extend(self.conn(server));
        a.extend(["--keys", s(&self.keys), "--batch", s(batch)]);
        let id = ok(&a).trim().to_string();
        assert_eq!(id.len(), 32, "job id {id}");
        self.jobs.lock().unwrap().insert(id.clone(), batch.to_path_buf());
        id
    }

    /// `fetch` then `release`: the released classes.
    pub fn fetch_release(&self, server: &str, job: &str) -> Vec<u64> {
        let out = self.dir.join(format!("scores-{job}"));
        let mut a = vec!["fetch"];
        a.extend(self.conn(server));
        a.extend(["--job", job, "--out", s(&out), "--timeout-secs", "240", "--no-progress"]);
        ok(&a);
        let batch = self.jobs.lock().unwrap().get(job).cloned().expect("job submitted by this hospital");
        let record = host_eval::cli::encrypt::record_path(&batch);
        let r: Value = serde_json::from_str(&ok(&[
            "release",
            "--keys",
            s(&self.keys),
            "--scores",
            s(&out),
            "--record",
            s(&record),
            "--json",
        ]))
        .unwrap();
        r.as_array().unwrap().iter().map(|p| p["class"].as_u64().unwrap()).collect()
    }
}

/// Test patients' features (phantoms), clamped into the model's input box, in groups of `per`.
pub fn patient_groups(model: &Path, groups: usize, per: usize) -> Vec<Vec<[f64; 8]>> {
    let m = clifhe_std::gnn::GnnModel::load(model).unwrap();
    let data = host_eval::cli::labelled::phantom_features(60, 7, 0.0).unwrap();
    let all: Vec<[f64; 8]> = data.test.0.iter().map(|f| m.input_box().clamp(&f.coeffs())).collect();
    assert!(all.len() >= groups * per, "{} test phantoms", all.len());
    (0..groups).map(|g| all[g * per..(g + 1) * per].to_vec()).collect()
}

/// `serve` arguments shared by the tests.
pub fn serve_args<'a>(model: &'a Path, tenants: &'a Path, port: &'a str) -> Vec<String> {
    [
        "serve",
        "--model",
        s(model),
        "--tenants",
        s(tenants),
        "--listen",
        &format!("127.0.0.1:{port}"),
    ]
    .iter()
    .map(|x| x.to_string())
    .collect()
}

/// Three hospitals with their own key sets and tenants.
pub fn three_hospitals(root: &Path, tenants: &Path) -> Vec<Hospital> {
    ["hospital-a", "hospital-b", "hospital-c"]
        .iter()
        .zip(1u64..)
        .map(|(n, seed)| Hospital::new(root, n, seed, tenants))
        .collect()
}

/// Test 1 of issue 11, against any running service: the hospitals encrypt 12 batches (3
/// patients each, 4 per hospital), submit them concurrently, fetch and release each, and every
/// released argmax must equal the plaintext model's (`host-eval predict`). Returns the job ids.
pub fn twelve_batches(server: &str, hospitals: &[Hospital], model: &Path) -> Vec<String> {
    let groups = patient_groups(model, 12, 3);
    let work: Vec<(usize, PathBuf, Vec<u64>)> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let h = i % hospitals.len();
            let (b, want) = hospitals[h].batch(server, model, &format!("b{i}"), g);
            (h, b, want)
        })
        .collect();
    let t = Instant::now();
    let ids: Vec<String> = std::thread::scope(|sc| {
        let handles: Vec<_> = work
            .iter()
            .map(|(h, b, _)| sc.spawn(move || hospitals[*h].submit(server, b)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 12, "job ids not unique: {ids:?}");
    for ((h, _, want), id) in work.iter().zip(&ids) {
        let got = hospitals[*h].fetch_release(server, id);
        assert_eq!(
            &got, want,
            "job {id} of {}: released argmax differs from the plaintext model",
            hospitals[*h].name
        );
    }
    eprintln!(
        "12 batches submitted, evaluated, fetched and released in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    ids
}

/// A metric's value from the Prometheus text.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A job's status as the tenant sees it.
pub fn job_status(port: u16, token: &str, id: &str) -> Value {
    let (st, _, b) = http(port, "GET", &format!("/v1/jobs/{id}"), Some(token), b"", &[]);
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&b));
    json(&b)
}
