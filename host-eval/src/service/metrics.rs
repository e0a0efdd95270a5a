//! Prometheus text exposition, written by hand (a handful of series; no client library).
//! Counters are per API process; queue depth and jobs by state come from the shared queue and
//! job table, so every replica reports the same figures for them.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub submitted: AtomicU64,
    pub rejected_busy: AtomicU64,
    pub responses_4xx: AtomicU64,
    pub responses_5xx: AtomicU64,
}

impl Metrics {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// The exposition text.
pub fn render(m: &Metrics, queue_depth: Option<u64>, by_state: &BTreeMap<&'static str, u64>, eval_seconds: (f64, u64)) -> String {
    let mut t = String::new();
    fn series(t: &mut String, name: &str, kind: &str, help: &str, lines: &[(String, String)]) {
        let _ = writeln!(t, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in lines {
            let _ = writeln!(t, "{name}{labels} {v}");
        }
    }
    let v = |c: &AtomicU64| c.load(Ordering::Relaxed).to_string();
    if let Some(d) = queue_depth {
        series(
            &mut t,
            "clifhe_queue_depth",
            "gauge",
            "Jobs waiting or in flight in the work queue.",
            &[(String::new(), d.to_string())],
        );
    }
    let states: Vec<(String, String)> = by_state
        .iter()
        .map(|(s, n)| (format!("{{state=\"{s}\"}}"), n.to_string()))
        .collect();
    series(&mut t, "clifhe_jobs", "gauge", "Jobs by state.", &states);
    series(
        &mut t,
        "clifhe_evaluation_seconds",
        "summary",
        "Seconds of encrypted evaluation per finished job.",
        &[],
    );
    let _ = writeln!(
        t,
        "clifhe_evaluation_seconds_sum {}\nclifhe_evaluation_seconds_count {}",
        eval_seconds.0, eval_seconds.1
    );
    series(
        &mut t,
        "clifhe_http_request_bytes_total",
        "counter",
        "Request body bytes received.",
        &[(String::new(), v(&m.bytes_in))],
    );
    series(
        &mut t,
        "clifhe_http_response_bytes_total",
        "counter",
        "Result bytes sent.",
        &[(String::new(), v(&m.bytes_out))],
    );
    series(
        &mut t,
        "clifhe_jobs_submitted_total",
        "counter",
        "Jobs accepted by this API process.",
        &[(String::new(), v(&m.submitted))],
    );
    series(
        &mut t,
        "clifhe_jobs_rejected_busy_total",
        "counter",
        "Submissions refused with 429 (queue full).",
        &[(String::new(), v(&m.rejected_busy))],
    );
    series(
        &mut t,
        "clifhe_http_errors_total",
        "counter",
        "Error responses by class.",
        &[
            ("{class=\"4xx\"}".into(), v(&m.responses_4xx)),
            ("{class=\"5xx\"}".into(), v(&m.responses_5xx)),
        ],
    );
    t
}
