//! The scale-out service against a real nats-server (JetStream, file storage in a temporary
//! directory, loopback): stateless API (`serve --nats`) and separate `worker` processes.
//! Issue 11 tests 1 (three hospitals, 12 concurrent batches, two workers), 2 (a worker killed
//! with SIGKILL mid-evaluation; deliveries exhausted) and 3 (nats-server restarted mid-run).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod service_common;
use service_common::*;

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

static SERIAL: Mutex<()> = Mutex::new(());

/// The API on NATS; returns the process and its port.
fn api(d: &TempDir, nats: &Nats, model: &Path, tenants: &Path, extra: &[&str]) -> (Proc, u16) {
    let port = free_port();
    let p = port.to_string();
    let mut args = serve_args(model, tenants, &p);
    args.extend(["--nats".to_string(), nats.url()]);
    args.extend(extra.iter().map(|x| x.to_string()));
    let v: Vec<&str> = args.iter().map(String::as_str).collect();
    let proc_ = Proc::spawn("serve", &v, &d.join(&format!("serve-{port}.log")));
    wait_healthy(port, Duration::from_secs(60));
    (proc_, port)
}

fn worker(d: &TempDir, nats: &Nats, model: &Path, name: &str, extra: &[&str]) -> Proc {
    let cache = d.join(&format!("cache-{name}"));
    let url = nats.url();
    let mut args = vec!["worker", "--nats", &url, "--model", s(model), "--cache", s(&cache)];
    args.extend_from_slice(extra);
    Proc::spawn(name, &args, &d.join(&format!("{name}.log")))
}

fn wait_state(port: u16, token: &str, job: &str, pred: impl Fn(&serde_json::Value) -> bool, limit: Duration) -> serde_json::Value {
    // Tolerates 503 while the API reconnects to a restarted nats-server.
    wait_for(&format!("job {job}"), limit, || {
        let (code, _, b) = http(port, "GET", &format!("/v1/jobs/{job}"), Some(token), b"", &[]);
        let st = (code == 200).then(|| json(&b))?;
        pred(&st).then_some(st)
    })
}

#[test]
fn nats_one_api_two_workers_three_hospitals_twelve_batches() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = TempDir::new("svc-nats");
    let nats = Nats::start(&d.join("nats"));
    let model = train_model(&d.join(""));
    let tenants = d.join("tenants.json");
    let hospitals = three_hospitals(&d.join(""), &tenants);
    let (_api, port) = api(&d, &nats, &model, &tenants, &[]);
    let _w1 = worker(&d, &nats, &model, "w1", &[]);
    let _w2 = worker(&d, &nats, &model, "w2", &[]);
    let url = format!("http://127.0.0.1:{port}");
    let ids = twelve_batches(&url, &hospitals, &model);
    // Both workers took jobs (the queue is shared), and every job ran once.
    for w in ["w1", "w2"] {
        let log = std::fs::read_to_string(d.join(&format!("{w}.log"))).unwrap();
        assert!(log.contains(": done in "), "{w} evaluated nothing:\n{log}");
    }
    for (i, id) in ids.iter().enumerate() {
        let st = job_status(port, &hospitals[i % 3].token, id);
        assert_eq!((st["state"].as_str(), st["attempts"].as_u64()), (Some("done"), Some(1)), "{st}");
    }
    let (_, _, m) = http(port, "GET", "/metrics", None, b"", &[]);
    let m = String::from_utf8(m).unwrap();
    assert_eq!(metric(&m, "clifhe_jobs{state=\"done\"}"), Some(12.0), "{m}");
    assert_eq!(metric(&m, "clifhe_queue_depth"), Some(0.0), "{m}");
}

#[test]
fn worker_killed_mid_evaluation_job_redelivered_or_failed_when_exhausted() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = TempDir::new("svc-kill");
    let nats = Nats::start(&d.join("nats"));
    let model = train_model(&d.join(""));
    let tenants = d.join("tenants.json");
    let h = Hospital::new(&d.join(""), "hospital-a", 21, &tenants);
    let delivery = ["--ack-wait-secs", "3", "--max-deliver", "2"];
    let (_api, port) = api(&d, &nats, &model, &tenants, &delivery);
    let url = format!("http://127.0.0.1:{port}");
    let groups = patient_groups(&model, 2, 3);
    let (bx, want) = h.batch(&url, &model, "x", &groups[0]);
    let (by, _) = h.batch(&url, &model, "y", &groups[1]);
    let running = |n: u64| move |st: &serde_json::Value| st["state"] == "running" && st["attempts"] == n;

    // X: the worker dies mid-evaluation; after the ack wait another one completes it, once.
    let x = h.submit(&url, &bx);
    let mut w1 = worker(&d, &nats, &model, "w1", &delivery);
    wait_state(port, &h.token, &x, running(1), Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(300));
    w1.signal("-KILL");
    w1.wait_exit(Duration::from_secs(10));
    let _w2 = worker(&d, &nats, &model, "w2", &delivery);
    let st = wait_state(port, &h.token, &x, |s| s["state"] == "done", Duration::from_secs(120));
    assert_eq!(st["attempts"], 2, "{st}");
    assert_eq!(h.fetch_release(&url, &x), want);
    let w2_log = std::fs::read_to_string(d.join("w2.log")).unwrap();
    assert_eq!(w2_log.matches(&format!("job {x}: done")).count(), 1, "{w2_log}");
    drop(_w2);

    // Y: killed on both allowed deliveries; the third delivery fails it with the reason.
    let y = h.submit(&url, &by);
    for (n, name) in [(1, "w3"), (2, "w4")] {
        let mut w = worker(&d, &nats, &model, name, &delivery);
        wait_state(port, &h.token, &y, running(n), Duration::from_secs(60));
        w.signal("-KILL");
        w.wait_exit(Duration::from_secs(10));
    }
    let _w5 = worker(&d, &nats, &model, "w5", &delivery);
    let st = wait_state(port, &h.token, &y, |s| s["state"] == "failed", Duration::from_secs(60));
    assert_eq!(st["error"], "max_deliver_exhausted", "{st}");
    let out = d.join("y-scores");
    let mut a = vec!["fetch"];
    a.extend(h.conn(&url));
    a.extend(["--job", &y, "--out", s(&out), "--no-progress"]);
    common::fails(&a, 7, &["max_deliver_exhausted"]);
    assert!(!out.exists());
}

#[test]
fn nats_restart_mid_run_queued_jobs_survive() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = TempDir::new("svc-restart");
    let mut nats = Nats::start(&d.join("nats"));
    let model = train_model(&d.join(""));
    let tenants = d.join("tenants.json");
    let h = Hospital::new(&d.join(""), "hospital-a", 31, &tenants);
    let delivery = ["--ack-wait-secs", "5"];
    let (_api, port) = api(&d, &nats, &model, &tenants, &delivery);
    let url = format!("http://127.0.0.1:{port}");
    let groups = patient_groups(&model, 5, 2);
    let batches: Vec<_> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| h.batch(&url, &model, &format!("r{i}"), g))
        .collect();
    // Four jobs queued with no worker running, then the server is killed and restarted.
    let ids: Vec<String> = batches[..4].iter().map(|(b, _)| h.submit(&url, b)).collect();
    nats.restart();
    // The worker starts against the restarted server; mid-run it is restarted once more.
    let _w = worker(&d, &nats, &model, "w1", &delivery);
    wait_state(port, &h.token, &ids[0], |s| s["state"] == "done", Duration::from_secs(120));
    nats.restart();
    // The API reconnects too: a fifth job submitted after the second restart (the client
    // retries while the API's connection comes back).
    let fifth = h.submit(&url, &batches[4].0);
    for (id, (_, want)) in ids.iter().chain([&fifth]).zip(&batches) {
        assert_eq!(&h.fetch_release(&url, id), want, "job {id}");
    }
}

/// Regression: a JetStream object put under an existing name purges the old chunks, and a
/// reader that had resolved the old description waited for them forever (a `submit` never
/// answered in the full test run while other `submit`s re-uploaded the same key set). Readers
/// racing rewrites must each finish, with one of the written contents or a typed error, and a
/// put of the bytes a name already holds must leave the object alone.
#[test]
fn object_reads_racing_rewrites_finish_and_identical_puts_are_skipped() {
    use bytes::Bytes;
    use std::time::Instant;
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = TempDir::new("svc-race");
    let nats = Nats::start(&d.join("nats"));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let backend = host_eval::service::nats::open(&nats.url(), Duration::from_secs(30), 3, Duration::from_secs(20))
            .await
            .unwrap();
        let store = backend.blobs.clone();
        // Four versions of 3 MB each (24 chunks of 128 KiB): long enough reads to be overtaken.
        let versions: Vec<Bytes> = (0u8..4)
            .map(|v| {
                Bytes::from(
                    (0..3usize << 20)
                        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(v))
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        store.put("race/object", versions[0].clone()).await.unwrap();
        let t = Instant::now();
        let writer = {
            let (store, versions) = (store.clone(), versions.clone());
            tokio::spawn(async move {
                for k in 1..=12 {
                    store.put("race/object", versions[k % 4].clone()).await.unwrap();
                }
            })
        };
        let readers: Vec<_> = (0..6)
            .map(|_| {
                let (store, versions) = (store.clone(), versions.clone());
                tokio::spawn(async move {
                    let mut outcomes = (0u32, 0u32);
                    for _ in 0..6 {
                        match store.get("race/object").await {
                            Ok(Some(b)) => {
                                assert!(versions.contains(&b), "a read returned bytes that were never written");
                                outcomes.0 += 1;
                            }
                            Ok(None) => panic!("the object vanished"),
                            Err(e) => {
                                assert!(e.to_string().contains("storage unavailable"), "{e}");
                                outcomes.1 += 1;
                            }
                        }
                    }
                    outcomes
                })
            })
            .collect();
        let all = async {
            writer.await.unwrap();
            let mut sum = (0, 0);
            for r in readers {
                let (a, b) = r.await.unwrap();
                sum = (sum.0 + a, sum.1 + b);
            }
            sum
        };
        let (complete, unavailable) = tokio::time::timeout(Duration::from_secs(240), all)
            .await
            .expect("an object read racing rewrites never finished");
        eprintln!(
            "36 reads racing 12 rewrites: {complete} complete, {unavailable} unavailable, {:.1} s",
            t.elapsed().as_secs_f64()
        );
        assert!(complete > 0);

        // Same bytes again: no new chunks, the description (and its chunk id) unchanged.
        let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        let bucket = js.get_object_store(host_eval::service::nats::OBJECT_BUCKET).await.unwrap();
        let before = bucket.info("race/object").await.unwrap();
        let same = versions[12 % 4].clone();
        store.put("race/object", same.clone()).await.unwrap();
        let after = bucket.info("race/object").await.unwrap();
        assert_eq!(before.nuid, after.nuid, "identical put rewrote the object");
        store.put("race/object", versions[1].clone()).await.unwrap();
        assert_ne!(
            bucket.info("race/object").await.unwrap().nuid,
            after.nuid,
            "a changed put was skipped"
        );
        assert_eq!(store.get("race/object").await.unwrap().unwrap(), versions[1]);
    });
}
