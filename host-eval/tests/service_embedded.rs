//! The embedded service (`host-eval serve --store DIR`: API, in-process workers and an on-disk
//! store in one process) end to end (issue 11, test 5: test 1 without NATS) and under bad input
//! (test 4). Needs no infrastructure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod service_common;
use service_common::*;

use std::sync::Mutex;
use std::time::Duration;

/// The tests share 2 cores: one at a time keeps their timing (and the deadlines) meaningful.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn embedded_three_hospitals_twelve_concurrent_batches() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = TempDir::new("svc-embedded");
    let model = train_model(&d.join(""));
    let tenants = d.join("tenants.json");
    let hospitals = three_hospitals(&d.join(""), &tenants);
    let port = free_port();
    let p = port.to_string();
    let mut args = serve_args(&model, &tenants, &p);
    args.extend(["--store", s(&d.join("store")), "--workers", "2", "--log-format", "json"].map(String::from));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut server = Proc::spawn("serve", &a, &d.join("serve.log"));
    wait_healthy(port, Duration::from_secs(30));
    let url = format!("http://127.0.0.1:{port}");

    let ids = twelve_batches(&url, &hospitals, &model);

    // Every job is done, once; the metrics say so and count the traffic.
    let (st, _, m) = http(port, "GET", "/metrics", None, b"", &[]);
    assert_eq!(st, 200);
    let m = String::from_utf8(m).unwrap();
    assert_eq!(metric(&m, "clifhe_jobs{state=\"done\"}"), Some(12.0), "{m}");
    assert_eq!(metric(&m, "clifhe_queue_depth"), Some(0.0), "{m}");
    assert_eq!(metric(&m, "clifhe_evaluation_seconds_count"), Some(12.0), "{m}");
    assert!(metric(&m, "clifhe_http_request_bytes_total").unwrap() > 12.0 * 1e6, "{m}");
    assert!(metric(&m, "clifhe_http_response_bytes_total").unwrap() > 0.0, "{m}");
    for (i, id) in ids.iter().enumerate() {
        let st = job_status(port, &hospitals[i % 3].token, id);
        assert_eq!((st["state"].as_str(), st["attempts"].as_u64()), (Some("done"), Some(1)), "{st}");
    }
    let (st, _, doc) = http(port, "GET", "/openapi.json", None, b"", &[]);
    assert_eq!(st, 200);
    assert!(json(&doc)["paths"]["/v1/jobs"].is_object());
    assert_eq!(http(port, "GET", "/readyz", None, b"", &[]).0, 200);

    // SIGTERM drains and exits cleanly.
    server.signal("-TERM");
    let status = server.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "serve exited with {status}");
    // --log-format json: one JSON object per line, each naming its component; the jobs' lines
    // are there.
    let log = std::fs::read_to_string(d.join("serve.log")).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.iter().all(|l| l["component"].is_string() && l["level"] == "INFO"), "{log}");
    assert!(
        lines
            .iter()
            .filter(|l| l["message"].as_str().unwrap_or("").contains("done in"))
            .count()
            >= 12,
        "{log}"
    );
}

/// A hand-made key set bundle holding `secret.key` (the client's encoder refuses to build one).
fn bundle_with_secret() -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let body = b"not really a key".to_vec();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let index = serde_json::json!({
        "format": "clifhe-bundle/1",
        "files": [{ "name": "secret.key", "len": body.len(), "sha256": hex(&Sha256::digest(&body)) }]
    });
    let index = serde_json::to_vec(&index).unwrap();
    let mut out = b"CLHEBNDL".to_vec();
    out.extend_from_slice(&(index.len() as u32).to_le_bytes());
    out.extend_from_slice(&index);
    out.extend_from_slice(&body);
    out
}

fn sha_hex(b: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

/// Test 4: no token 401, another tenant's job 404, truncated or corrupt batch 400 with the
/// typed error, oversized body 413, unknown key set 409, a secret key refused by client and
/// server, a full queue 429 with Retry-After; afterwards the service answers, the one real job
/// completes with the right diagnoses, and no job was created by any refused request.
#[test]
fn bad_input_is_refused_with_typed_errors_and_loses_nothing() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = TempDir::new("svc-bad");
    let model = train_model(&d.join(""));
    let tenants = d.join("tenants.json");
    let a = Hospital::new(&d.join(""), "hospital-a", 11, &tenants);
    let b = Hospital::new(&d.join(""), "hospital-b", 12, &tenants);
    let port = free_port();
    let p = port.to_string();
    let url = format!("http://127.0.0.1:{port}");
    // The limits need the batch's size: start a server to fetch the profile, encrypt, restart.
    let start = |extra: &[&str], log: &str| {
        let mut args = serve_args(&model, &tenants, &p);
        args.extend(["--store", s(&d.join("store"))].map(String::from));
        args.extend(extra.iter().map(|x| x.to_string()));
        let v: Vec<&str> = args.iter().map(String::as_str).collect();
        let proc_ = Proc::spawn("serve", &v, &d.join(log));
        wait_healthy(port, Duration::from_secs(30));
        proc_
    };
    let first = start(&[], "serve0.log");
    let groups = patient_groups(&model, 2, 2);
    let (batch, want) = a.batch(&url, &model, "good", &groups[0]);
    let (batch2, _) = a.batch(&url, &model, "second", &groups[1]);
    drop(first);
    let bytes = std::fs::read(&batch).unwrap();
    let limit = bytes.len() + 4096;
    let _server = start(&["--max-batch-bytes", &limit.to_string(), "--max-queue", "1"], "serve.log");

    // A job, and straight away a second one while it is queued or running: 429 + Retry-After.
    let job = a.submit(&url, &batch);
    let digest = job_status(port, &a.token, &job)["keyset"].as_str().unwrap().to_string();
    let submit_path = format!("/v1/jobs?keyset={digest}");
    let (st, h, body) = http(port, "POST", &submit_path, Some(&a.token), &std::fs::read(&batch2).unwrap(), &[]);
    assert_eq!(st, 429, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["error"], "queue_full");
    assert!(h.iter().any(|(k, v)| k == "retry-after" && v.parse::<u64>().is_ok()), "{h:?}");
    wait_for("the job to finish", Duration::from_secs(120), || {
        (job_status(port, &a.token, &job)["state"] == "done").then_some(())
    });
    // The record says done before the worker acknowledges the delivery (at-least-once: a crash
    // in between redelivers a finished job, never loses one), so the queue empties just after.
    wait_for("the queue to drain", Duration::from_secs(30), || {
        let (_, _, m) = http(port, "GET", "/metrics", None, b"", &[]);
        (metric(&String::from_utf8_lossy(&m), "clifhe_queue_depth") == Some(0.0)).then_some(())
    });

    let err = |st: u16, body: &[u8]| (st, json(body)["error"].as_str().unwrap_or("").to_string());
    // No token, a malformed header, an unknown token.
    let (st, _, body) = http(port, "GET", &format!("/v1/jobs/{job}"), None, b"", &[]);
    assert_eq!(err(st, &body), (401, "unauthorized".into()));
    let (st, _, body) = http(port, "POST", &submit_path, None, &bytes, &[]);
    assert_eq!(err(st, &body), (401, "unauthorized".into()));
    let (st, _, body) = http(port, "GET", "/v1/profile?preset=private-n15", Some(&"0".repeat(64)), b"", &[]);
    assert_eq!(err(st, &body), (401, "unauthorized".into()));
    // Another tenant's job is not there for it: status, result and delete all 404.
    for (m, path) in [
        ("GET", format!("/v1/jobs/{job}")),
        ("GET", format!("/v1/jobs/{job}/result")),
        ("DELETE", format!("/v1/jobs/{job}")),
    ] {
        let (st, _, body) = http(port, m, &path, Some(&b.token), b"", &[]);
        assert_eq!(err(st, &body), (404, "not_found".into()), "{m} {path}");
    }
    // ... nor is its key set: hospital B cannot submit under A's key set.
    let (st, _, body) = http(port, "POST", &submit_path, Some(&b.token), &bytes, &[]);
    assert_eq!(err(st, &body), (409, "unknown_keyset".into()));
    let (st, _, body) = http(
        port,
        "POST",
        &format!("/v1/jobs?keyset={}", "ab".repeat(32)),
        Some(&a.token),
        &bytes,
        &[],
    );
    assert_eq!(err(st, &body), (409, "unknown_keyset".into()));
    // Truncated, damaged and foreign batches: 400 with the typed error of `infer`.
    let (st, _, body) = http(port, "POST", &submit_path, Some(&a.token), &bytes[..bytes.len() - 100], &[]);
    assert_eq!(err(st, &body), (400, "corrupt_batch".into()));
    assert!(
        json(&body)["message"].as_str().unwrap().contains("truncated"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let mut bad = bytes.clone();
    bad[0] ^= 0xff;
    let (st, _, body) = http(port, "POST", &submit_path, Some(&a.token), &bad, &[]);
    assert_eq!(err(st, &body), (400, "corrupt_batch".into()));
    let (st, _, body) = http(port, "POST", &submit_path, Some(&a.token), b"", &[]);
    assert_eq!(err(st, &body), (400, "corrupt_batch".into()));
    // Oversized: refused from the declared length, before the body is read.
    let (st, _, body) = http(
        port,
        "POST",
        &submit_path,
        Some(&a.token),
        b"",
        &[("Content-Length", &(limit + 1).to_string())],
    );
    assert_eq!(err(st, &body), (413, "payload_too_large".into()));
    let mut big = bytes.clone();
    big.resize(limit + 1, 0);
    let (st, _, body) = http(port, "POST", &submit_path, Some(&a.token), &big, &[]);
    assert_eq!(err(st, &body), (413, "payload_too_large".into()));
    // Bad ids and digests.
    let (st, _, body) = http(port, "POST", "/v1/jobs?keyset=../../etc", Some(&a.token), &bytes, &[]);
    assert_eq!(err(st, &body), (400, "bad_digest".into()));
    let (st, _, body) = http(port, "GET", "/v1/jobs/..%2F..%2Fetc", Some(&a.token), b"", &[]);
    assert_eq!(err(st, &body), (404, "not_found".into()));
    // A secret key: the server refuses the bundle, the client refuses to send it.
    let secret = bundle_with_secret();
    let (st, _, body) = http(
        port,
        "PUT",
        &format!("/v1/keysets/{}", sha_hex(&secret)),
        Some(&a.token),
        &secret,
        &[],
    );
    assert_eq!(err(st, &body), (400, "secret_key_refused".into()));
    let (st, _, body) = http(
        port,
        "PUT",
        &format!("/v1/keysets/{}", "00".repeat(32)),
        Some(&a.token),
        &secret,
        &[],
    );
    assert_eq!(err(st, &body), (400, "digest_mismatch".into()));
    let leaky = d.join("leaky");
    std::fs::create_dir_all(leaky.join("eval")).unwrap();
    for f in ["keyset.json", "public.key", "eval/relin.key"] {
        std::fs::copy(a.keys.join(f), leaky.join(f)).unwrap();
    }
    std::fs::copy(a.keys.join("secret.key"), leaky.join("eval/secret.key")).unwrap();
    let mut args = vec!["submit"];
    args.extend(a.conn(&url));
    args.extend(["--keys", s(&leaky), "--batch", s(&batch)]);
    common::fails(&args, 7, &["secret"]);

    // Still up; the real job's result is intact and right; nothing else became a job.
    assert_eq!(http(port, "GET", "/healthz", None, b"", &[]).0, 200);
    assert_eq!(a.fetch_release(&url, &job), want);
    let (_, _, m) = http(port, "GET", "/metrics", None, b"", &[]);
    let m = String::from_utf8(m).unwrap();
    assert_eq!(metric(&m, "clifhe_jobs{state=\"done\"}"), Some(1.0), "{m}");
    for state in ["queued", "running", "failed"] {
        assert_eq!(metric(&m, &format!("clifhe_jobs{{state=\"{state}\"}}")), Some(0.0), "{state}: {m}");
    }
    assert!(metric(&m, "clifhe_http_errors_total{class=\"4xx\"}").unwrap() >= 15.0, "{m}");
    // Deleting removes the job for its owner too.
    assert_eq!(http(port, "DELETE", &format!("/v1/jobs/{job}"), Some(&a.token), b"", &[]).0, 204);
    assert_eq!(http(port, "GET", &format!("/v1/jobs/{job}"), Some(&a.token), b"", &[]).0, 404);
}

/// The service serving the rotation-invariant model (`train --arch equivariant
/// --circuit-private`): the hospital fetches its channel profile, encrypts scans for it, and
/// the released argmax equals `host-eval predict` on every patient.
#[test]
fn embedded_equivariant_model_end_to_end() {
    let Some(npz) = adrenal_dataset() else {
        println!("skipping: AdrenalMNIST3D not found");
        return;
    };
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = TempDir::new("svc-equivariant");
    let model = d.join("eq.json");
    ok(&[
        "train",
        "--arch",
        "equivariant",
        "--circuit-private",
        "--dataset",
        s(&npz),
        "--out",
        s(&model),
    ]);
    let tenants = d.join("tenants.json");
    let h = Hospital::new(&d.join(""), "hospital-eq", 1, &tenants);
    let port = free_port();
    let p = port.to_string();
    let mut args = serve_args(&model, &tenants, &p);
    args.extend(["--store", s(&d.join("store")), "--workers", "1"].map(String::from));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut server = Proc::spawn("serve", &a, &d.join("serve.log"));
    wait_healthy(port, Duration::from_secs(30));
    let url = format!("http://127.0.0.1:{port}");

    let profile = h.dir.join("profile.json");
    let mut f = vec!["fetch-profile"];
    f.extend(h.conn(&url));
    f.extend(["--keys", s(&h.keys), "--out", s(&profile)]);
    ok(&f);
    let pj = json(&std::fs::read(&profile).unwrap());
    assert!(
        pj["channels"]["domain"]["present"].is_array() && pj.get("input_box").is_none(),
        "{pj}"
    );
    let spec = format!("{}#test:100..116", s(&npz));
    let batch = h.dir.join("eq.clhe");
    ok(&[
        "encrypt",
        "--keys",
        s(&h.keys),
        "--profile",
        s(&profile),
        "--input",
        &spec,
        "--out",
        s(&batch),
    ]);
    let id = h.submit(&url, &batch);
    let released = h.fetch_release(&url, &id);
    let want: serde_json::Value = serde_json::from_str(&ok(&["predict", "--model", s(&model), "--input", &spec, "--json"])).unwrap();
    let want: Vec<u64> = want["patients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["class"].as_u64().unwrap())
        .collect();
    assert_eq!(released, want);

    // The block layout: one patient at low latency, with the rotation keys the profile lists
    // (the next submit uploads the key set bundle that now holds them).
    let bprofile = h.dir.join("bprofile.json");
    let mut f = vec!["fetch-profile"];
    f.extend(h.conn(&url));
    f.extend(["--keys", s(&h.keys), "--out", s(&bprofile), "--layout", "blocks"]);
    ok(&f);
    // A block batch under a key set without the rotation keys: the job fails with the typed
    // reason (no retry), naming what the hospital must run.
    let early = h.dir.join("early.clhe");
    let spec1 = format!("{}#test:5..6", s(&npz));
    ok(&[
        "encrypt",
        "--keys",
        s(&h.keys),
        "--profile",
        s(&bprofile),
        "--input",
        &spec1,
        "--out",
        s(&early),
    ]);
    let id = h.submit(&url, &early);
    let st = wait_for("the job to fail", Duration::from_secs(120), || {
        let j = job_status(port, &h.token, &id);
        (j["state"] == "failed").then_some(j)
    });
    assert_eq!(st["error"], "evaluation_failed", "{st}");
    assert!(st["message"].to_string().contains("evalkeys --keys DIR --profile"), "{st}");
    ok(&["evalkeys", "--keys", s(&h.keys), "--profile", s(&bprofile)]);
    // Two jobs: the first uploads the key set bundle and decodes its rotation keys, the second
    // finds both where the first left them.
    for (i, sample) in [7, 8].into_iter().enumerate() {
        let one = format!("{}#test:{sample}..{}", s(&npz), sample + 1);
        let bbatch = h.dir.join(format!("one-{sample}.clhe"));
        ok(&[
            "encrypt",
            "--keys",
            s(&h.keys),
            "--profile",
            s(&bprofile),
            "--input",
            &one,
            "--out",
            s(&bbatch),
        ]);
        let t = std::time::Instant::now();
        let id = h.submit(&url, &bbatch);
        let released = h.fetch_release(&url, &id);
        eprintln!(
            "one patient, block layout, job {i}: submit to release through the service in {:.2} s, of which the worker's evaluation {} s",
            t.elapsed().as_secs_f64(),
            job_status(port, &h.token, &id)["evaluation_seconds"]
        );
        let want: serde_json::Value = serde_json::from_str(&ok(&["predict", "--model", s(&model), "--input", &one, "--json"])).unwrap();
        assert_eq!(released, vec![want["patients"][0]["class"].as_u64().unwrap()]);
    }
    server.signal("-TERM");
    assert!(server.wait_exit(Duration::from_secs(30)).success());
}
