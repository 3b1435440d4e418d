#!/usr/bin/env python3
"""Figures of `dind-init pool` with the PostgreSQL stage's prepared image.

20 "tests" each take an environment, run one query against the database in
it (`docker exec L2 docker exec pg psql`), hold it, and release it; for pool
size 0 (a plain `docker run` restore each time, removed after) and pools of
1, 2 and 4 members; one taker at a time and 4 at once. Twice: long tests
(holding the environment about one restore time) and short ones (the query
only). Reported per case: take-to-answer p50/p95/max, take alone, release, the total
wall time, and for the short tests the rate of environments handed out
against the refill rate the machine allows (cores / CPU seconds of one
restore, read from the L2's cpuacct cgroup). Writes target/pool-figures.json
and the table between its markers in docs/dind.md.

usage: docker/dind/pool-figures.py [--image IMAGE] [--tests 20] [--sizes 0,1,2,4]
       [--kinds long,short] [--takers 1,4] [--hold-ms MS] [--note TEXT]
       [--json FILE] [--readme FILE|-]
The image: $POOL_FIGURES_IMAGE, else dind-init-figures/30-postgres:latest
(`make pool-figures` builds it with docker/dind/stages/30-postgres).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BEGIN = "<!-- pool-figures:begin (make pool-figures writes this table) -->"
END = "<!-- pool-figures:end -->"
QUERY = "SELECT count(*) FROM pgbench_accounts"
DIND_INIT = os.environ.get("DIND_INIT", os.path.join(ROOT, "target", "x86_64-unknown-linux-musl", "release", "dind-init"))


def sh(*args):
    """Runs a command, returns its stripped stdout; raises with its stderr."""
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}")
    return done.stdout.strip()


def now_ms():
    return time.monotonic_ns() / 1_000_000


def query(container):
    return sh("docker", "exec", container, "docker", "exec", "pg", "psql", "-U", "postgres", "-Atqc", QUERY)


def cpu_seconds(container_id):
    """CPU the container used so far (cgroup v1 cpuacct, or v2 cpu.stat)."""
    for path, scale in ((f"/sys/fs/cgroup/cpuacct/docker/{container_id}/cpuacct.usage", 1e9),
                        (f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/cpu.stat", 1e6)):
        try:
            text = open(path).read()
        except OSError:
            continue
        if path.endswith("cpu.stat"):
            return int(text.split("usage_usec")[1].split()[0]) / scale
        return int(text) / scale
    return None


def pool(*args):
    return sh(DIND_INIT, "pool", "--engine", "docker", *args)


class Case:
    """One run of TESTS tests with TAKERS at once from a pool of SIZE."""

    def __init__(self, image, flags, size, takers, hold_ms, tests):
        self.image, self.flags, self.size = image, flags, size
        self.takers, self.hold_ms, self.tests = takers, hold_ms, tests
        self.name = f"pool-figures-{os.getpid()}-{size}-{takers}-{hold_ms}"
        self.answers, self.takes, self.releases, self.restore_cpu = [], [], [], []
        self.held = set()
        self.lock = threading.Lock()
        self.errors = []

    def one_test(self):
        began = now_ms()
        if self.size == 0:
            container = sh("docker", "run", "-d", *self.flags, self.image)
            sh("docker", "exec", container, "dind-init", "status", "--wait", "running", "--timeout", "600")
            took = now_ms() - began
        else:
            container = pool("take", self.name, "--timeout", "600")
            took = now_ms() - began
        with self.lock:
            if container in self.held:
                raise RuntimeError(f"{container} was handed out while another test held it")
            self.held.add(container)
        try:
            answer = query(container)
            answered = now_ms() - began
            if not answer.isdigit():
                raise RuntimeError(f"the query gave {answer!r}")
            if self.size == 0:
                cpu = cpu_seconds(sh("docker", "inspect", "-f", "{{.Id}}", container))
            time.sleep(self.hold_ms / 1000)
        finally:
            with self.lock:
                self.held.discard(container)
            releasing = now_ms()
            if self.size == 0:
                sh("docker", "rm", "-f", "-v", container)
            else:
                pool("release", container)
            released = now_ms() - releasing
        with self.lock:
            self.releases.append(released)
            self.takes.append(took)
            self.answers.append(answered)
            if self.size == 0 and cpu is not None:
                self.restore_cpu.append(cpu)

    def worker(self, count):
        for _ in range(count):
            try:
                self.one_test()
            except RuntimeError as error:
                with self.lock:
                    self.errors.append(str(error).splitlines()[0])

    def run(self):
        if self.size > 0:
            pool("fill", self.image, "--name", self.name, "--size", str(self.size), "--wait", "--", *self.flags)
        try:
            began = now_ms()
            share = [self.tests // self.takers + (1 if i < self.tests % self.takers else 0) for i in range(self.takers)]
            threads = [threading.Thread(target=self.worker, args=(n,)) for n in share]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            total = now_ms() - began
        finally:
            if self.size > 0:
                pool("drain", self.name, "--all")
        if self.errors:
            raise RuntimeError("; ".join(self.errors[:3]))
        return {
            "size": self.size, "takers": self.takers, "hold_ms": self.hold_ms, "tests": self.tests,
            "answer_ms": percentiles(self.answers), "take_ms": percentiles(self.takes),
            "release_ms": percentiles(self.releases),
            "total_ms": round(total), "held_ms": self.hold_ms * self.tests,
            "rate_per_s": round(self.tests / (total / 1000), 2),
            "restore_cpu_s": round(statistics.median(self.restore_cpu), 2) if self.restore_cpu else None,
        }


def percentiles(values):
    ordered = sorted(values)
    at = lambda q: ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]
    return {"p50": round(at(0.5)), "p95": round(at(0.95)), "max": round(ordered[-1])}


def table(result):
    lines = [
        f"Machine: {result['machine']}. {result['note']}",
        "",
        "| tests | pool | takers | take p50 | take-to-answer p50 / p95 / max | release p50 | total (held) | rate |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case in result["cases"]:
        if "error" in case:
            lines.append(f"| {case['kind']} | {case['size']} | {case['takers']} | failed: {case['error']} | | | | |")
            continue
        a = case["answer_ms"]
        lines.append(
            f"| {case['kind']} | {case['size'] or '0 (restore)'} | {case['takers']} | {case['take_ms']['p50']} ms "
            f"| {a['p50']} / {a['p95']} / {a['max']} ms | {case['release_ms']['p50']} ms | {case['total_ms'] / 1000:.1f} s ({case['held_ms'] / 1000:.1f} s) "
            f"| {case['rate_per_s']}/s |")
    lines += ["", f"One restore: {result['restore_ms']} ms to the query answered, "
              f"{result['restore_cpu_s']} CPU s in the L2; refill rate the machine allows: "
              f"{result['refill_rate_per_s']}/s ({result['cores']} cores / restore CPU). "
              f"The query alone (`docker exec L2 docker exec pg psql`): p50 {result['query_ms']['p50']} ms."]
    return lines


def write_readme(path, result):
    """Puts the table between the README's markers (refuses a README without them)."""
    text = open(path).read()
    begin, end = text.find(BEGIN), text.find(END)
    if begin < 0 or end < begin:
        raise RuntimeError(f"{path} has no {BEGIN} ... {END} markers")
    with open(path, "w") as out:
        out.write(text[:begin + len(BEGIN)] + "\n" + "\n".join(table(result)) + "\n" + text[end:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default=os.environ.get("POOL_FIGURES_IMAGE", "dind-init-figures/30-postgres:latest"))
    parser.add_argument("--tests", type=int, default=20)
    parser.add_argument("--sizes", default="0,1,2,4")
    parser.add_argument("--hold-ms", type=int, default=None, help="long tests' hold (default: one restore)")
    parser.add_argument("--json", default=os.path.join(ROOT, "target", "pool-figures.json"))
    parser.add_argument("--readme", default=os.path.join(ROOT, "docs", "dind.md"))
    parser.add_argument("--note", default="")
    parser.add_argument("--kinds", default="long,short")
    parser.add_argument("--run-arg", action="append", default=[], help="one more `docker run` argument of every L2")
    parser.add_argument("--takers", default="1,4")
    args = parser.parse_args()
    l2_base = os.environ.get("DIND_L2_IMAGE", "dind-init/dind-l2:storage")
    flags = sh(os.path.join(HERE, "run-flags.sh"), "--lines", l2_base).splitlines() + args.run_arg

    # One restore, and the query alone on a running L2: the floors.
    warm = Case(args.image, flags, 0, 1, 0, 3)
    restore = warm.run()
    container = sh("docker", "run", "-d", *flags, args.image)
    try:
        sh("docker", "exec", container, "dind-init", "status", "--wait", "running", "--timeout", "600")
        query_ms = []
        for _ in range(5):
            began = now_ms()
            query(container)
            query_ms.append(now_ms() - began)
    finally:
        sh("docker", "rm", "-f", "-v", container)
    hold_ms = args.hold_ms or restore["answer_ms"]["p50"]
    cores = os.cpu_count()
    result = {
        "machine": f"{cores} cores, Docker {sh('docker', 'version', '-f', '{{.Server.Version}}')} on "
                   f"{sh('docker', 'info', '-f', '{{.Driver}}')}, load average "
                   f"{open('/proc/loadavg').read().split()[0]} at the start",
        "note": args.note, "image": args.image, "cores": cores,
        "restore_ms": restore["answer_ms"]["p50"], "restore_cpu_s": restore["restore_cpu_s"],
        "refill_rate_per_s": round(cores / restore["restore_cpu_s"], 2) if restore["restore_cpu_s"] else None,
        "query_ms": percentiles(query_ms), "cases": [],
    }
    for kind, hold in (("long", hold_ms), ("short", 0)):
        if kind not in args.kinds.split(","):
            continue
        for size in [int(s) for s in args.sizes.split(",")]:
            for takers in [int(t) for t in args.takers.split(",")]:
                print(f"pool-figures: {kind} tests, pool {size}, {takers} taker(s)", file=sys.stderr, flush=True)
                try:
                    case = Case(args.image, flags, size, takers, hold, args.tests).run()
                except RuntimeError as error:
                    case = {"size": size, "takers": takers, "error": str(error).splitlines()[0][:200]}
                case["kind"] = kind
                result["cases"].append(case)
                os.makedirs(os.path.dirname(args.json), exist_ok=True)
                with open(args.json, "w") as out:
                    json.dump(result, out, indent=1)
    print("\n".join(table(result)))
    if args.readme != "-":
        write_readme(args.readme, result)


if __name__ == "__main__":
    main()
