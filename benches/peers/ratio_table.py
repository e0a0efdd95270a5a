"""Prints the clifhe / peer ratio table from one side-by-side run (see compare.sh).

Reads clifhe's criterion results (`<criterion dir>/**/new/benchmark.json` and
`estimates.json`: the median of the samples) for the groups `eval/N=2^k` and the functions
named in OPS, and the peer's `RESULT {json}` lines (file given on the command line). Prints a
Markdown table: operation, N, clifhe median ms, peer median ms (and its CPU-time median),
ratio clifhe / peer, and whether it meets the goal (ratio <= 0.8). Exits non-zero when a
figure is missing, so a broken run is not mistaken for a result.
"""
import glob
import json
import os
import sys

OPS = ["ct*ct mul+relin", "rotate 1"]
GOAL = 0.8


def clifhe_results(criterion_dir):
    out = {}
    for path in glob.glob(os.path.join(criterion_dir, "**", "new", "benchmark.json"), recursive=True):
        with open(path) as f:
            b = json.load(f)
        group, func = b.get("group_id", ""), b.get("function_id")
        if not group.startswith("eval/N=2^") or func not in OPS:
            continue
        with open(os.path.join(os.path.dirname(path), "estimates.json")) as f:
            est = json.load(f)
        out[(func, int(group.split("^")[1]))] = est["median"]["point_estimate"] / 1e6
    return out


def peer_results(path):
    out = {}
    with open(path) as f:
        for line in f:
            if line.startswith("RESULT "):
                r = json.loads(line[len("RESULT "):])
                out[(r["op"], r["logn"])] = r
    return out


def main():
    criterion_dir, peer_file, logns = sys.argv[1], sys.argv[2], [int(x) for x in sys.argv[3:]]
    ours, peer = clifhe_results(criterion_dir), peer_results(peer_file)
    lib = next(iter(peer.values()))["lib"] if peer else "peer"
    print(f"| operation | N | clifhe median (ms) | {lib} median (ms) [CPU] | clifhe / peer | goal <= {GOAL} |")
    print("|---|---|---:|---:|---:|---|")
    missing = False
    for logn in logns:
        for op in OPS:
            o, p = ours.get((op, logn)), peer.get((op, logn))
            if o is None or p is None:
                print(f"| {op} | 2^{logn} | {'missing' if o is None else f'{o:.1f}'} | {'missing' if p is None else p['median_ms']} | | |")
                missing = True
                continue
            ratio = o / p["median_ms"]
            print(f"| {op} | 2^{logn} | {o:.1f} | {p['median_ms']:.1f} [{p['median_cpu_ms']:.1f}] | {ratio:.2f} | {'met' if ratio <= GOAL else 'not met'} |")
    sys.exit(1 if missing else 0)


if __name__ == "__main__":
    main()
