//! Times `host_eval::data::load_volume` on the given files (or series directories), for
//! `scripts/load-bench.sh`: each path is loaded `--runs N` times (default 7) after one warm-up
//! load, and one line per path is printed: `path<TAB>bytes<TAB>median seconds<TAB>voxels`,
//! where bytes is the size on disk (a directory: the sum of its files).
//!
//! Run with `cargo run --release -p host-eval --example load_bench -- [--runs N] PATH...`.

use std::path::Path;
use std::time::Instant;

fn size_on_disk(p: &Path) -> u64 {
    if p.is_dir() {
        std::fs::read_dir(p)
            .map(|it| it.filter_map(Result::ok).map(|e| size_on_disk(&e.path())).sum())
            .unwrap_or(0)
    } else {
        std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut runs = 7usize;
    if let Some(i) = args.iter().position(|a| a == "--runs") {
        runs = args.get(i + 1).ok_or("--runs needs a number")?.parse()?;
        args.drain(i..i + 2);
    }
    for path in &args {
        let p = Path::new(path);
        let warm = host_eval::data::load_volume(p).map_err(|e| format!("{path}: {e}"))?;
        let mut times = Vec::with_capacity(runs.max(1));
        for _ in 0..runs.max(1) {
            let t = Instant::now();
            let v = host_eval::data::load_volume(p).map_err(|e| format!("{path}: {e}"))?;
            times.push(t.elapsed().as_secs_f64());
            std::hint::black_box(v);
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        println!("{path}\t{}\t{median:.6}\t{}", size_on_disk(p), warm.data.len());
    }
    Ok(())
}
