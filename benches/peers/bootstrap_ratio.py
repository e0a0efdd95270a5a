"""Prints the clifhe / DESILO bootstrapping table from one side-by-side run
(compare_bootstrap.sh).

Reads clifhe's criterion result for `bootstrap/N=2^16/1t` / `bootstrap full slots (32768)`
(`estimates.json`: the median of the samples) and DESILO's `RESULT {json}` line. Prints a
Markdown table with both medians, the ratio clifhe / peer and whether it meets issue 14's goal
(at most 0.8). Exits non-zero when a figure is missing, so a broken run is not read as a result.
"""
import glob
import json
import os
import sys

GROUP, FUNCTION, GOAL = "bootstrap/N=2^16/1t", "bootstrap full slots (32768)", 0.8


def clifhe_median_ms(criterion_dir):
    for path in glob.glob(os.path.join(criterion_dir, "**", "new", "benchmark.json"), recursive=True):
        with open(path) as f:
            b = json.load(f)
        if b.get("group_id") == GROUP and b.get("function_id") == FUNCTION:
            with open(os.path.join(os.path.dirname(path), "estimates.json")) as f:
                return json.load(f)["median"]["point_estimate"] / 1e6
    return None


def peer(path):
    with open(path) as f:
        for line in f:
            if line.startswith("RESULT "):
                return json.loads(line[len("RESULT "):])
    return None


def main():
    ours, theirs = clifhe_median_ms(sys.argv[1]), peer(sys.argv[2])
    if ours is None or theirs is None:
        print(f"missing result: clifhe {ours}, peer {theirs}", file=sys.stderr)
        sys.exit(1)
    ratio = ours / theirs["median_ms"]
    print("| bootstrap, N=2^16, full slots, 1 thread | clifhe (ms) | DESILO (ms, CPU ms) | DESILO min / mean bits | clifhe / DESILO | goal <= 0.8 |")
    print("|---|---|---|---|---|---|")
    print(f"| {theirs['slots']} slots | {ours:.0f} | {theirs['median_ms']:.0f} ({theirs['median_cpu_ms']:.0f}) | "
          f"{theirs['min_bits']} / {theirs['mean_bits']} | {ratio:.2f} | {'met' if ratio <= GOAL else 'NOT met'} |")


if __name__ == "__main__":
    main()
