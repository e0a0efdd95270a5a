//! Helpers shared by the tests that drive the built `host-eval` binary (each test file
//! includes this module): a scratch directory, running the binary, and checking its exits.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!("clifhe-cli-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
    /// Names in the directory (to prove no temporary or partial file was left).
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Longest one command may run before the test fails (and the command is killed), so that a
/// hang is a failure with the command's output instead of a test run that never ends.
pub const COMMAND_LIMIT: std::time::Duration = std::time::Duration::from_secs(600);

#[allow(clippy::panic)]
pub fn run(args: &[&str]) -> Output {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_host-eval"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = std::time::Instant::now() + COMMAND_LIMIT;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let (o, e) = (out.join().unwrap(), err.join().unwrap());
            panic!(
                "{args:?} still running after {COMMAND_LIMIT:?}; killed\nstderr: {}\nstdout: {}",
                String::from_utf8_lossy(&e),
                String::from_utf8_lossy(&o)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Runs a command that must succeed; returns its standard output.
pub fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail with `code` and a message containing every `needle`, without
/// a panic; returns the message.
pub fn fails(args: &[&str], code: i32, needles: &[&str]) -> String {
    let out = run(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{args:?}: stderr {err}");
    assert!(err.starts_with("error: "), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: '{n}' not in {err}");
    }
    err
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The test's own raw decryption of a vendor's score files (`class-<c>.ct` in `scores`):
/// patient p's class-c score in slot p * stride. Verification only, in the test process: the
/// product never decrypts vendor output except through the flooded, budgeted `release`.
pub fn raw_scores(keys: &Path, scores: &Path, classes: usize, patients: usize, stride: usize) -> Vec<Vec<f64>> {
    let ks = host_eval::cli::keyset::KeySet::open(keys).unwrap();
    let sk = ks.secret_key().unwrap();
    let ctx = clifhe_core::context::Context::new(ks.params).unwrap();
    let per_class: Vec<Vec<f64>> = (0..classes)
        .map(|c| {
            let bytes = std::fs::read(scores.join(format!("class-{c}.ct"))).unwrap();
            let ct = clifhe_core::wire::ciphertext_from_bytes(&ks.params, &bytes).unwrap();
            clifhe_core::decrypt::decrypt(&ctx, &sk, &ct).unwrap().decode_real().unwrap()
        })
        .collect();
    (0..patients).map(|p| per_class.iter().map(|v| v[p * stride]).collect()).collect()
}

/// AdrenalMNIST3D as shipped beside the repository (`shared/data`), if present (the tests that
/// need it skip without it).
pub fn adrenal_dataset() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/adrenalmnist3d.npz");
    p.exists().then_some(p)
}

/// `infer --model M --keys K --input B --out O` plus `extra`.
pub fn infer_args<'a>(model: &'a Path, keys: &'a str, batch: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["infer", "--model", s(model), "--keys", keys, "--input", s(batch), "--out", s(out)];
    args.extend_from_slice(extra);
    args
}
