#!/usr/bin/env python3
"""Figures of the inner engine's storage modes on a PostgreSQL L3 stack.

For every mode of init.d-examples/dind/30-docker-storage.sh: the fresh setup
of stage 30-postgres (storage, dockerd, the PostgreSQL image from the bundle,
initdb, `pgbench -i -s SCALE`), its commit, then CYCLES times restore ->
insert ROWS rows -> quiesce -> commit, then INSTANCES L2 containers started
together from the last image, CYCLES restores of it each with and without
dockerd's iptables setup (40-dockerd.sh's DIND_DOCKERD_IPTABLES=0), and a plain `docker commit` (no quiesce) of a
running one. Writes target/dind-figures.json and the table between the
`dind-figures` markers of docs/dind.md (scripts/write-figures). Needs the
images of `make dind-images`.

A layer is measured on its own (the top row of `docker history`), so the
image's growth beyond its layers ("hidden growth") is a figure that can be
non-zero; each cycle's layer is compared with the WAL PostgreSQL wrote for
the cycle's insert (`pg_current_wal_lsn()` before and after), the logical
change, and each restore must find the database shut down cleanly.

Then the default mode (`auto`) once more on a second engine with overlay2
on ext4 (`--l1 host,overlay2`; `--l1 overlay2` measures only that row).

usage: docker/dind/figures.py [--modes M,M] [--scale 10] [--rows 100000]
       [--cycles 3] [--instances 4] [--l1 host,overlay2] [--json FILE] [--page FILE|-]
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
STAGE = os.path.join(HERE, "stages", "30-postgres")
MODES = ["fuse-overlayfs", "vfs", "loop"]
MB = 1_000_000
# The bound of a layer per cycle: twice the WAL written, plus three 16 MB
# files stored whole (a changed file goes into a layer whole: the WAL segment
# the cycle began in, the one a shutdown checkpoint recycles or creates,
# and the growing table file with the inner engine's logs and metadata).
# A mode that stores the engine as blocks (loop: the whole file) exceeds it.
LAYER_WAL_FACTOR = 2
LAYER_SLACK_BYTES = 48 * MB


def sh(*args, stdin=None):
    """Runs a command, returns its stripped stdout; raises with its stderr."""
    done = subprocess.run(args, input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}")
    return done.stdout.strip()


def now_ms():
    return time.monotonic_ns() // 1_000_000


def default_mode(result):
    """The mode `auto` (30-docker-storage.sh's default) takes on this machine:
    fuse-overlayfs where it can make directories (its run logs no warning), else vfs."""
    fuse = result["modes"].get("fuse-overlayfs", {})
    if "fuse_overlayfs_can_mkdir" not in fuse:
        return "vfs"
    return "fuse-overlayfs" if fuse["fuse_overlayfs_can_mkdir"] else "vfs"


class L2:
    """An L2 container of this run, removed with its volumes by remove()."""

    live = set()

    def __init__(self, image, extra=()):
        self.id = sh("docker", "run", "-d", *FLAGS, *extra, image)
        L2.live.add(self.id)

    def exec(self, *command, stdin=None):
        return sh("docker", "exec", *(["-i"] if stdin else []), self.id, *command, stdin=stdin)

    def psql(self, sql):
        return self.exec("docker", "exec", "pg", "psql", "-U", "postgres", "-Atqc", sql)

    def ready(self, timeout):
        """Waits until every start ran and the database answers; returns the row count."""
        try:
            self.exec("dind-init", "status", "--wait", "running", "--timeout", str(timeout))
            self.exec("dind-init", "status")
            return int(self.psql("SELECT count(*) FROM pgbench_history"))
        except RuntimeError as error:
            logs = subprocess.run(["docker", "logs", "--tail", "30", self.id], capture_output=True, text=True)
            raise RuntimeError(f"{error}\n{logs.stdout}{logs.stderr}") from None

    def start_durations(self):
        """Milliseconds each init.d start took in this boot (dind-init status)."""
        status = json.loads(self.exec("dind-init", "status", "--json"))
        return {s["name"]: s["start"]["duration_ms"] for s in status["scripts"] if s.get("start")}

    def wal_lsn(self):
        return self.psql("SELECT pg_current_wal_lsn()")

    def wal_bytes_since(self, lsn):
        """Bytes of WAL PostgreSQL wrote since LSN (pg_wal_lsn_diff)."""
        return int(float(self.psql(f"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{lsn}')")))

    def crash_recoveries(self):
        """1 unless PostgreSQL's last start-up found a clean shutdown, else 0."""
        logs = subprocess.run(["docker", "exec", self.id, "docker", "logs", "pg"], capture_output=True, text=True)
        return 0 if started_clean(logs.stdout + logs.stderr) else 1

    def quiesce(self):
        began = now_ms()
        self.exec("dind-init", "quiesce", "--timeout", "600")
        return now_ms() - began

    def commit(self, image):
        began = now_ms()
        sh("docker", "commit", self.id, image)
        return now_ms() - began

    def disk_added(self):
        """Bytes on L1's disk for this container: its writable layer and its volumes."""
        rw = int(sh("docker", "inspect", "--size", "-f", "{{.SizeRw}}", self.id))
        sources = sh("docker", "inspect", "-f", "{{range .Mounts}}{{if eq .Type \"volume\"}}{{.Source}} {{end}}{{end}}", self.id)
        volumes = sum(int(sh("du", "-s", "--block-size=1", src).split()[0]) for src in sources.split())
        return rw + volumes

    def remove(self):
        subprocess.run(["docker", "rm", "-f", "-v", self.id], capture_output=True)
        L2.live.discard(self.id)


def started_clean(pg_log):
    """Whether the last start-up in PG_LOG (PostgreSQL's log, all its
    start-ups) began from a clean shutdown: its "database system was shut
    down at", not "was interrupted" and "not properly shut down"."""
    last = pg_log.rsplit("starting PostgreSQL", 1)[-1]
    return "database system was shut down at" in last and "not properly shut down" not in last


def image_bytes(image):
    return int(sh("docker", "image", "inspect", "-f", "{{.Size}}", image))


def own_layer_bytes(image):
    """The bytes of IMAGE's top layer alone (the first row of docker history)."""
    return int(sh("docker", "history", "--human=false", "--format", "{{.Size}}", image).splitlines()[0])


def hidden_growth(setup_image_bytes, last_image_bytes, layers):
    """What the last image holds beyond the setup image and the cycles' own layers."""
    return last_image_bytes - setup_image_bytes - sum(layers)


def commit_cycle(l2, image):
    """Quiesce, measure what changed, commit; the figures of one commit."""
    quiesce_ms = l2.quiesce()
    changed = int(sh(os.path.join(HERE, "changed-bytes.sh"), l2.id))
    commit_ms = l2.commit(image)
    size = image_bytes(image)
    return {
        "changed_bytes": changed,
        "layer_bytes": own_layer_bytes(image),
        "quiesce_ms": quiesce_ms,
        "commit_ms": commit_ms,
        "image_bytes": size,
    }


def measure(mode, args, tmp_image, repo):
    print(f"== {mode}", file=sys.stderr, flush=True)
    images = []
    figures = {}
    try:
        began = now_ms()
        l2 = L2(tmp_image, ["-v", f"{STAGE}/bundle:/opt/dind-bundle:ro", "-e", f"DIND_STORAGE={mode}",
                            "-e", f"PGBENCH_SCALE={args.scale}"])
        rows = l2.ready(3600)
        figures["setup_ms"] = now_ms() - began
        if mode == "fuse-overlayfs":
            logs = subprocess.run(["docker", "logs", l2.id], capture_output=True, text=True)
            figures["fuse_overlayfs_can_mkdir"] = "fuse-overlayfs cannot make a directory" not in logs.stderr + logs.stdout
        figures["data_bytes"] = int(l2.exec("du", "-sxb", "/var/lib/docker").split()[0])
        # docker commit on an L1 with the fuse-overlayfs driver walks every file
        # of the container and its image (naive diff): its cost follows this.
        figures["l2_files"] = int(l2.exec("sh", "-c", "find / -xdev | wc -l"))
        image = f"{repo}/{mode}:setup"
        figures["setup_commit"] = commit_cycle(l2, image)
        images.append(image)
        l2.remove()
        print(f"   setup {figures['setup_ms']} ms", file=sys.stderr, flush=True)

        figures["cycles"] = []
        for n in range(1, args.cycles + 1):
            began = now_ms()
            l2 = L2(images[-1])
            count = l2.ready(600)
            restore_ms = now_ms() - began
            if count != rows:
                raise RuntimeError(f"{mode} cycle {n}: {count} history rows after the restore, expected {rows}")
            recoveries = l2.crash_recoveries()
            scripts = l2.start_durations()
            lsn = l2.wal_lsn()
            l2.psql(f"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) SELECT 1 + i % {args.scale * 10}, "
                    f"1 + i % {args.scale}, 1 + i % {args.scale * 100000}, i, now() FROM generate_series(1, {args.rows}) i")
            wal = l2.wal_bytes_since(lsn)
            rows += args.rows
            image = f"{repo}/{mode}:cycle-{n}"
            cycle = {"restore_ms": restore_ms, "rows_after_restore": count, "crash_recoveries": recoveries,
                     "wal_bytes": wal,
                     "restore_scripts_ms": scripts, "restore_outside_scripts_ms": restore_ms - sum(scripts.values())}
            cycle.update(commit_cycle(l2, image))
            figures["cycles"].append(cycle)
            images.append(image)
            l2.remove()
            print(f"   cycle {n}: {cycle}", file=sys.stderr, flush=True)

        figures["parallel"] = parallel(images[-1], args.instances, rows)
        print(f"   parallel: {figures['parallel']}", file=sys.stderr, flush=True)

        figures["iptables"] = iptables_switch(images[-1], args.cycles, rows)
        print(f"   iptables on/off: {figures['iptables']}", file=sys.stderr, flush=True)

        # A plain docker commit of a running, restored L2 (no quiesce).
        l2 = L2(images[-1])
        l2.ready(600)
        used = int(l2.exec("du", "-sxb", "/var/lib/docker").split()[0])
        image = f"{repo}/{mode}:unquiesced"
        commit_ms = l2.commit(image)
        images.append(image)
        figures["unquiesced_commit"] = {"layer_bytes": own_layer_bytes(image),
                                        "commit_ms": commit_ms, "data_used_bytes": used}
        l2.remove()
        print(f"   unquiesced commit: {figures['unquiesced_commit']}", file=sys.stderr, flush=True)
    finally:
        for container in list(L2.live):
            subprocess.run(["docker", "rm", "-f", "-v", container], capture_output=True)
        L2.live.clear()
        for image in images:
            subprocess.run(["docker", "rmi", "-f", image], capture_output=True)
    return figures


def iptables_switch(image, times, rows):
    """Restores of IMAGE with dockerd's iptables setup (the default) and
    without it (DIND_DOCKERD_IPTABLES=0), alternating: restore to the
    database answering, and the shares of 40-dockerd.sh and 60-postgres.sh."""
    runs = {"on": [], "off": []}
    for _ in range(times):
        for switch, extra in (("on", []), ("off", ["-e", "DIND_DOCKERD_IPTABLES=0"])):
            began = now_ms()
            l2 = L2(image, extra)
            try:
                count = l2.ready(600)
                restore_ms = now_ms() - began
                if count != rows:
                    raise RuntimeError(f"iptables {switch}: {count} history rows, expected {rows}")
                scripts = l2.start_durations()
                runs[switch].append({"restore_ms": restore_ms, "dockerd_ms": scripts.get("40-dockerd.sh"),
                                     "postgres_ms": scripts.get("60-postgres.sh"),
                                     "crash_recoveries": l2.crash_recoveries()})
            finally:
                l2.remove()
    return runs


def iptables_table(result):
    """The DIND_DOCKERD_IPTABLES=0 switch of 40-dockerd.sh, per mode."""
    lines = ["| mode | iptables | 40-dockerd.sh start | 60-postgres.sh start | restore to DB answering |",
             "|---|---|---|---|---|"]
    for mode, f in result["modes"].items():
        for switch, label in (("on", "on (default)"), ("off", "off (`DIND_DOCKERD_IPTABLES=0`)")):
            runs = f.get("iptables", {}).get(switch)
            if runs:
                lines.append(f"| {mode} | {label} | {span([r['dockerd_ms'] for r in runs], ' ms')} "
                             f"| {span([r['postgres_ms'] for r in runs], ' ms')} "
                             f"| {span([r['restore_ms'] for r in runs], ' ms')} |")
    return lines


def parallel(image, instances, rows):
    """Starts INSTANCES L2 containers together; time until all answer, disk each adds."""
    containers = [None] * instances
    errors = []

    def one(i):
        try:
            containers[i] = L2(image)
            count = containers[i].ready(900)
            if count != rows:
                errors.append(f"instance {i}: {count} rows, expected {rows}")
        except RuntimeError as error:
            errors.append(f"instance {i}: {error}")

    began = now_ms()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(instances)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    all_ready_ms = now_ms() - began
    try:
        if errors:
            raise RuntimeError("; ".join(errors))
        added = [c.disk_added() for c in containers]
    finally:
        for container in containers:
            if container:
                container.remove()
    return {"instances": instances, "disk_added_bytes_per_instance": max(added),
            "disk_added_bytes_each": added, "all_ready_ms": all_ready_ms}


def measure_on_overlay2_l1(mode, args, tmp_image, l2_base):
    """The measurement of MODE on a second engine with overlay2 on ext4, the
    L1 most hosts run (scripts/overlay2-engine.sh: its own network
    namespace, data root and socket), into which the stage's images are
    carried with docker save | docker load. The engine is removed after."""
    global FLAGS
    engine = f"/tmp/{args.repo}-ov2"
    started = subprocess.run([os.path.join(ROOT, "scripts", "overlay2-engine.sh"), "start", engine],
                             capture_output=True, text=True)
    if started.returncode != 0:
        raise RuntimeError(f"overlay2-engine.sh start: {started.stderr.strip()}")
    host_flags = FLAGS
    try:
        save = subprocess.Popen(["docker", "save", tmp_image, l2_base], stdout=subprocess.PIPE)
        loaded = subprocess.run(["docker", "-H", started.stdout.strip(), "load", "-q"], stdin=save.stdout,
                                capture_output=True, text=True)
        if save.wait() != 0 or loaded.returncode != 0:
            raise RuntimeError(f"docker save | load into the overlay2 engine: {loaded.stderr.strip()}")
        os.environ["DOCKER_HOST"] = started.stdout.strip()
        FLAGS = sh(os.path.join(HERE, "run-flags.sh"), "--lines", l2_base).splitlines()
        return measure(mode, args, tmp_image, f"{args.repo}-ov2")
    finally:
        os.environ.pop("DOCKER_HOST", None)
        FLAGS = host_flags
        subprocess.run([os.path.join(ROOT, "scripts", "overlay2-engine.sh"), "stop", engine], capture_output=True)


def overlay2_targets(result):
    """Issue 17's targets for the overlay2 L1 row, and where the restore's time goes."""
    name = next((m for m in result["modes"] if m.startswith("overlay2 L1")), None)
    f = result["modes"].get(name) if name else None
    if not f or "error" in f:
        return []
    c = f["cycles"]
    commit = max(x["commit_ms"] for x in c)
    restore = max(x["restore_ms"] for x in c)
    parts = ", ".join(f"{script} {ms} ms" for script, ms in c[-1]["restore_scripts_ms"].items())
    return [
        f"| target ({name}) | figure | met |", "|---|---|---|",
        f"| `docker commit` ≤ 1 s | {span([x['commit_ms'] for x in c], ' ms')} | {'met' if commit <= 1000 else 'NOT met'} |",
        f"| restore to the database answering ≤ 1.5 s | {span([x['restore_ms'] for x in c], ' ms')} "
        f"(last: {parts}, {c[-1]['restore_outside_scripts_ms']} ms outside the scripts) "
        f"| {'met' if restore <= 1500 else 'NOT met'} |",
    ]


def mb(value):
    return f"{value / MB:.1f}"


def layer_bound(cycle):
    return LAYER_WAL_FACTOR * cycle["wal_bytes"] + LAYER_SLACK_BYTES


def ratio(cycle):
    """Layer ÷ WAL written, marked where the layer exceeds the bound (every mode, not only the default)."""
    value = f"{cycle['layer_bytes'] / cycle['wal_bytes']:.1f}" if cycle["wal_bytes"] else "∞"
    return value if cycle["layer_bytes"] <= layer_bound(cycle) else f"{value} (over the bound)"


def span(values, unit=""):
    low, high = min(values), max(values)
    return f"{low}{unit}" if low == high else f"{low}–{high}{unit}"


def together(result):
    """The label of the instances-started-together figures ("4 together")."""
    return f"{result.get('instances', 4)} together"


def table(result):
    lines = [
        "| mode | setup | changed per cycle (MB) | layer per cycle (MB) | WAL written per cycle (MB) "
        "| layer ÷ WAL | quiesce | commit | restore to DB answering "
        f"| image: setup → {result.get('cycles', 3)} cycles (MB) | {together(result)}: disk each, all ready "
        "| plain commit, no quiesce |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for mode, f in result["modes"].items():
        if "error" in f:
            lines.append(f"| {mode} | failed: {f['error']} |||||||||||")
            continue
        c = f["cycles"]
        p = f["parallel"]
        u = f["unquiesced_commit"]
        name = f"**{mode}** (`auto` takes it on this L1)" if mode == result["default_mode"] else mode
        lines.append(
            f"| {name} | {f['setup_ms']} ms | {' / '.join(mb(x['changed_bytes']) for x in c)} "
            f"| {' / '.join(mb(x['layer_bytes']) for x in c)} | {' / '.join(mb(x['wal_bytes']) for x in c)} "
            f"| {' / '.join(ratio(x) for x in c)} | {span([x['quiesce_ms'] for x in c], ' ms')} "
            f"| {span([x['commit_ms'] for x in c], ' ms')} | {span([x['restore_ms'] for x in c], ' ms')} "
            f"| {mb(f['setup_commit']['image_bytes'])} → {mb(c[-1]['image_bytes'])} "
            f"| {mb(p['disk_added_bytes_per_instance'])} MB, {p['all_ready_ms']} ms "
            f"| {mb(u['layer_bytes'])} MB in {u['commit_ms']} ms ({mb(u['data_used_bytes'])} MB used) |")
    return lines


def targets(result):
    mode = result["default_mode"]
    f = result["modes"].get(mode)
    if not f or "error" in f:
        return []
    c = f["cycles"]
    restore = max(x["restore_ms"] for x in c)
    single = min(x["restore_ms"] for x in c)
    layers_ok = all(x["layer_bytes"] <= layer_bound(x) for x in c)
    growth = hidden_growth(f["setup_commit"]["image_bytes"], c[-1]["image_bytes"], [x["layer_bytes"] for x in c])
    p = f["parallel"]
    rows = [
        (f"layer per cycle ≤ {LAYER_WAL_FACTOR} × WAL written + {LAYER_SLACK_BYTES // MB} MB",
         ", ".join(f"{mb(x['layer_bytes'])} ≤ {mb(layer_bound(x))}" for x in c), layers_ok),
        ("`docker commit` ≤ 3 s", span([x["commit_ms"] for x in c], " ms"), max(x["commit_ms"] for x in c) <= 3000),
        ("quiesce ≤ 2 s", span([x["quiesce_ms"] for x in c], " ms"), max(x["quiesce_ms"] for x in c) <= 2000),
        ("restore to the database answering ≤ 3 s", span([x["restore_ms"] for x in c], " ms"), restore <= 3000),
        ("fresh setup ÷ restore ≥ 10", f"{f['setup_ms']} / {restore} = {f['setup_ms'] / restore:.1f}",
         f["setup_ms"] / restore >= 10),
        (f"image after {len(c)} cycles = setup image + the {len(c)} layers (each its own `docker history` row)",
         f"hidden growth {growth} bytes", growth == 0),
        (f"{together(result)}: ≤ 100 MB of host disk each before they write",
         f"{mb(p['disk_added_bytes_per_instance'])} MB", p["disk_added_bytes_per_instance"] <= 100 * MB),
        (f"{together(result)}: all ready within 2 × a single restore", f"{p['all_ready_ms']} vs 2 × {single} ms",
         p["all_ready_ms"] <= 2 * single),
        ("every restore starts from a clean shutdown (\"database system was shut down at\")",
         f"{sum(x['crash_recoveries'] for x in c)} of {len(c)} did not",
         all(x["crash_recoveries"] == 0 for x in c)),
    ]
    lines = [f"| target ({mode}) | figure | met |", "|---|---|---|"]
    lines += [f"| {name} | {figure} | {'met' if ok else 'NOT met'} |" for name, figure, ok in rows]
    return lines


def all_tables(result):
    return "\n".join(table(result) + [""] + targets(result) + [""] + overlay2_targets(result) + [""]
                     + iptables_table(result))


def figure_writer():
    """The shared writer of figure tables, scripts/write-figures (its link scripts/write_figures.py)."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import write_figures
    return write_figures


def main():
    global FLAGS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--json", default=os.path.join(ROOT, "target", "dind-figures.json"))
    parser.add_argument("--page", "--readme", dest="page", default=os.path.join(ROOT, "docs", "dind.md"),
                        help="the Markdown page with the dind-figures markers; - writes none")
    parser.add_argument("--repo", default="dind-init-figures")
    parser.add_argument("--l1", default="host,overlay2",
                        help="host: every mode on this engine; overlay2: the default mode on an overlay2 L1 too")
    args = parser.parse_args()
    modes = args.modes.split(",")
    for mode in modes:
        if mode not in MODES:
            parser.error(f"unknown mode '{mode}': use {', '.join(MODES)}")
    tmp_image = f"{args.repo}/30-postgres:tmp"
    # Its own L2 base image: the shared engine may hold another build's.
    l2_base = f"{args.repo}/dind-l2:latest"
    sh(os.path.join(HERE, "build-l2.sh"), l2_base)
    FLAGS = sh(os.path.join(HERE, "run-flags.sh"), "--lines", l2_base).splitlines()
    sh("make", "-s", "-C", STAGE, "tmp-image", f"REPO={args.repo}", f"BASE_TAG={l2_base}")

    result = {"default_mode": None, "machine": f"{os.cpu_count()} cores, Docker "
              + sh("docker", "version", "-f", "{{.Server.Version}}") + " on " + sh("docker", "info", "-f", "{{.Driver}}"),
              "scale": args.scale, "rows_per_cycle": args.rows, "cycles": args.cycles,
              "instances": args.instances, "modes": {}}
    for mode in modes if "host" in args.l1.split(",") else []:
        try:
            result["modes"][mode] = measure(mode, args, tmp_image, args.repo)
        except RuntimeError as error:
            # One broken mode must not hide the others' figures.
            print(f"   {mode} failed: {error}", file=sys.stderr, flush=True)
            result["modes"][mode] = {"error": str(error).splitlines()[0]}
        result["default_mode"] = default_mode(result)
        os.makedirs(os.path.dirname(args.json), exist_ok=True)
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)
    if "overlay2" in args.l1.split(","):
        # The default (`auto`, which takes fuse-overlayfs where it can make
        # directories) once more, on the L1 most hosts run.
        name = "overlay2 L1, auto"
        try:
            result["modes"][name] = measure_on_overlay2_l1("auto", args, tmp_image, l2_base)
        except RuntimeError as error:
            print(f"   {name} failed: {error}", file=sys.stderr, flush=True)
            result["modes"][name] = {"error": str(error).splitlines()[0]}
        os.makedirs(os.path.dirname(args.json), exist_ok=True)
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)
    print(all_tables(result))
    if args.page != "-":
        figure_writer().write(args.page, "dind-figures", "make dind-figures", all_tables(result))
        print(f"wrote {args.json} and the table in {args.page}", file=sys.stderr)


if __name__ == "__main__":
    main()
