//! `dind-init pool` against the real engines (docker, and podman rootful in
//! `podman_pool_…`): concurrent takes never share a member nor grow the
//! pool past its size, a member killed while waiting is replaced, an image
//! whose start fails spends one budget and then fails `take` in one line,
//! `take` waits for the first ready member (and a refill in flight) and no
//! longer than its timeout, a claim whose answer is lost is undone and one
//! past its lease reclaimed, `release` removes the anonymous volumes,
//! `drain` leaves nothing behind, and bad input gets one line. The members
//! are the base image with a start that takes a while ([`WARM_SCRIPT`]),
//! not the DinD stack: what is tested is the pool.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::docker::{TestImage, engine, engine_ok, require_engine, unique};
use crate::harness::{dind_init, dind_init_argv};
use crate::snapshot::text;

/// A start that takes two seconds: a member is `starting` that long.
pub(crate) const WARM_SCRIPT: (&str, &str) =
    ("10-warm.sh", "[ \"$1\" = start ] && sleep 2; exit 0");

/// A start that never ends: a member of this image is never ready.
pub(crate) const HANGING_SCRIPT: (&str, &str) = (
    "10-hang.sh",
    "[ \"$1\" = start ] && exec sleep 1000; exit 0",
);

/// A pool of one test: its name, engine, run args and log; drained (all
/// members, taken or not) on drop, whatever the test left.
pub(crate) struct Pool {
    pub(crate) name: String,
    pub(crate) engine: &'static str,
    pub(crate) run_args: Vec<String>,
    pub(crate) log: PathBuf,
}

impl Pool {
    pub(crate) fn new(engine: &'static str, run_args: &[&str]) -> Self {
        Pool {
            name: unique("pool"),
            engine,
            run_args: run_args.iter().map(|arg| arg.to_string()).collect(),
            log: std::env::temp_dir().join(format!("{}.log", unique("dind-init-pool"))),
        }
    }

    /// `dind-init pool --engine ENGINE ARGS`, its refills logging to `self.log`.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = dind_init();
        command
            .args(["pool", "--engine", self.engine])
            .args(args)
            .env("DIND_INIT_POOL_LOG", &self.log);
        command
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .output()
            .expect("cannot run dind-init pool")
    }

    /// Runs it, which must exit 0; its stdout, trimmed.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(output.status.success(), "pool {args:?}: {}", text(&output));
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// `fill IMAGE --name POOL --size N [--wait] -- RUN-ARGS`.
    pub(crate) fn fill(&self, image: &str, size: u32, wait: bool) {
        let size = size.to_string();
        let mut args = vec!["fill", image, "--name", &self.name, "--size", &size];
        if wait {
            args.push("--wait");
        }
        args.push("--");
        args.extend(self.run_args.iter().map(String::as_str));
        assert_eq!(self.ok(&args), self.name);
    }

    pub(crate) fn take(&self) -> String {
        self.ok(&["take", &self.name, "--timeout", "120"])
    }

    /// `ls --json`: the pool's summary and its members.
    pub(crate) fn listing(&self) -> Value {
        serde_json::from_str(&self.ok(&["ls", &self.name, "--json"])).unwrap()
    }

    /// `ls --json`: (name, state) of every member.
    pub(crate) fn members(&self) -> Vec<(String, String)> {
        let listed = self.listing();
        listed["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["name"].as_str().unwrap().to_string(),
                    m["state"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// Containers with the pool's label, as the engine itself lists them.
    pub(crate) fn containers(&self) -> Vec<String> {
        self.labelled("io.dind-init.pool", "{{.ID}}")
    }

    /// The names of the pool's containers not taken: waiting or starting.
    fn untaken(&self) -> Vec<String> {
        self.labelled("io.dind-init.pool", "{{.Names}}")
            .into_iter()
            .filter(|name| !name.contains("-taken"))
            .collect()
    }

    /// What `format` says of each container with `label`=the pool's name.
    fn labelled(&self, label: &str, format: &str) -> Vec<String> {
        let filter = format!("label={label}={}", self.name);
        engine_ok(
            self.engine,
            &["ps", "-a", "--filter", &filter, "--format", format],
        )
        .split_whitespace()
        .map(str::to_string)
        .collect()
    }

    /// The pool log and `command`'s stderr, which must contain `line`.
    pub(crate) fn assert_said(&self, command: &Output, line: &str) -> String {
        let said = format!(
            "{}{}",
            std::fs::read_to_string(&self.log).unwrap_or_default(),
            String::from_utf8_lossy(&command.stderr)
        );
        assert!(said.contains(line), "no line says `{line}`: {said}");
        said
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let _ = self.run(&["drain", &self.name, "--all"]);
        let record = self.labelled("io.dind-init.pool.record", "{{.ID}}");
        for id in self.containers().into_iter().chain(record) {
            let _ = engine(self.engine, &["rm", "-f", "-v", &id]);
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Polls `condition` (each try runs the engine's CLI a few times) until it
/// holds; a member's boot on a loaded machine takes seconds.
fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `dind-init status` in the container exits 0: running and healthy.
fn is_ready(engine_name: &str, name: &str) -> bool {
    engine(engine_name, &["exec", name, "dind-init", "status"])
        .status
        .success()
}

/// `count` processes take at once; what each got, which must be ready.
fn take_at_once(pool: &Pool, count: usize) -> Vec<String> {
    let takers: Vec<_> = (0..count)
        .map(|_| {
            pool.command(&["take", &pool.name, "--timeout", "240"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    takers
        .into_iter()
        .map(|taker| {
            let output = taker.wait_with_output().unwrap();
            assert!(output.status.success(), "take: {}", text(&output));
            let name = String::from_utf8_lossy(&output.stdout).trim().to_string();
            assert!(
                is_ready(pool.engine, &name),
                "{name} was handed out not ready"
            );
            name
        })
        .collect()
}

/// Six processes take at once from a pool of four: six different members,
/// each renamed taken and healthy when handed out (the last two only once
/// replacements got ready).
pub(crate) fn concurrent_takes_never_share(pool: &Pool, image: &str) {
    pool.fill(image, 4, true);
    let mut names = take_at_once(pool, 6);
    names.sort();
    let before = names.len();
    names.dedup();
    assert_eq!(
        names.len(),
        before,
        "two takes got the same member: {names:?}"
    );
    for name in &names {
        assert!(name.ends_with("-taken"), "{names:?}");
        assert!(
            engine(pool.engine, &["container", "inspect", name])
                .status
                .success()
        );
    }
}

/// The container's full id.
fn id_of(engine_name: &str, name: &str) -> String {
    engine_ok(engine_name, &["inspect", "-f", "{{.Id}}", name])
}

/// A take, which must hand out a ready member other than the container
/// `gone` (an id: a replacement gets the slot's name again); its output.
fn take_another_than(pool: &Pool, gone: &str) -> Output {
    let take = pool.run(&["take", &pool.name, "--timeout", "120"]);
    assert!(take.status.success(), "{}", text(&take));
    let taken = String::from_utf8_lossy(&take.stdout).trim().to_string();
    assert_ne!(id_of(pool.engine, &taken), gone, "{gone} was handed out");
    assert!(
        is_ready(pool.engine, &taken),
        "{taken} was handed out not ready"
    );
    take
}

/// A ready member killed while waiting: the next take hands out another,
/// and the pool is back to two ready members without it, the log (or the
/// take's own lines) saying why it went.
pub(crate) fn a_killed_member_is_replaced(pool: &Pool, image: &str) {
    pool.fill(image, 2, true);
    let members = pool.members();
    assert_eq!(members.len(), 2, "{members:?}");
    assert!(
        members.iter().all(|(_, state)| state == "ready"),
        "{members:?}"
    );
    let killed = members[0].0.clone();
    let killed_id = id_of(pool.engine, &killed);
    engine_ok(pool.engine, &["kill", &killed]);
    let take = take_another_than(pool, &killed_id);
    wait_for(
        "the pool is back to two ready members, the killed one gone",
        || {
            let members = pool.members();
            let ready = members.iter().filter(|(_, state)| state == "ready").count();
            let gone = !pool
                .containers()
                .iter()
                .any(|id| killed_id.starts_with(id.as_str()));
            ready == 2 && gone
        },
    );
    pool.assert_said(
        &take,
        &format!("removed {killed} (unhealthy: exited with code 137)"),
    );
}

/// A start that leaves a daemon, which the test kills: the member turns
/// unhealthy (its script `degraded`).
const DAEMON_SCRIPT: (&str, &str) = (
    "20-daemon.sh",
    "[ \"$1\" = start ] && { sleep 1000 & }; exit 0",
);

/// The only member of a pool turns unhealthy while waiting (its daemon
/// died): `ls` says so with the status' reason, and a take removes it,
/// saying why, and hands out its replacement once that is ready.
pub(crate) fn an_unhealthy_member_is_replaced(pool: &Pool, image: &str) {
    pool.fill(image, 1, true);
    let [(sick, _)] = <[(String, String); 1]>::try_from(pool.members()).unwrap();
    engine_ok(
        pool.engine,
        &["exec", &sick, "sh", "-c", "kill $(pidof sleep)"],
    );
    wait_for("ls shows the member unhealthy", || {
        pool.members() == [(sick.clone(), "unhealthy".to_string())]
    });
    let take = take_another_than(pool, &id_of(pool.engine, &sick));
    let said = pool.assert_said(
        &take,
        &format!("removed {sick} (unhealthy: phase: running (not healthy)"),
    );
    assert!(said.contains("20-daemon.sh degraded"), "{said}");
}

/// `take` right after a `fill` without `--wait`: it waits, and what it
/// hands out is ready (the start takes 2 s). From a pool whose members
/// never get ready, `take --timeout 2` gives up after about 2 s.
pub(crate) fn take_waits_for_the_first_ready_and_no_longer(
    pool: &Pool,
    image: &str,
    never_ready: &Pool,
    hanging_image: &str,
) {
    pool.fill(image, 1, false);
    let taken = pool.take();
    assert!(
        is_ready(pool.engine, &taken),
        "{taken} was handed out while starting"
    );

    never_ready.fill(hanging_image, 1, false);
    let started = Instant::now();
    let output = never_ready.run(&["take", &never_ready.name, "--timeout", "2"]);
    let elapsed = started.elapsed();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(&format!(
            "no member of pool {} got ready within 2 s",
            never_ready.name
        )),
        "{}",
        text(&output)
    );
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(15),
        "take --timeout 2 returned after {elapsed:?}"
    );
    let members = never_ready.members();
    assert!(
        members.iter().all(|(_, state)| state == "starting"),
        "{members:?}"
    );
}

/// `release` removes the member and its anonymous volume; a container
/// that is not a member is refused and kept.
pub(crate) fn release_removes_the_anonymous_volumes(pool: &Pool, image: &str) {
    pool.fill(image, 1, true);
    let taken = pool.take();
    let volume = engine_ok(
        pool.engine,
        &["inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", &taken],
    );
    assert!(!volume.is_empty(), "the member has no anonymous volume");
    pool.ok(&["release", &taken]);
    assert!(
        !engine(pool.engine, &["container", "inspect", &taken])
            .status
            .success()
    );
    assert!(
        !engine(pool.engine, &["volume", "inspect", &volume])
            .status
            .success(),
        "release left the volume {volume}"
    );

    let run_args: Vec<&str> = pool.run_args.iter().map(String::as_str).collect();
    let outsider = crate::docker::Container::run_on(pool.engine, image, &run_args);
    let output = pool.run(&["release", &outsider.id]);
    assert_eq!(output.status.code(), Some(4), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("is not a pool member"),
        "{}",
        text(&output)
    );
    assert!(
        engine(pool.engine, &["container", "inspect", &outsider.id])
            .status
            .success()
    );
}

/// `drain` removes the waiting members and the replacement a take's
/// refill is starting, keeps the taken one; `drain --all` leaves nothing,
/// and no refill runs on afterwards.
pub(crate) fn drain_leaves_nothing_behind(pool: &Pool, image: &str) {
    pool.fill(image, 2, true);
    let taken = pool.take();
    pool.ok(&["drain", &pool.name]);
    assert_eq!(
        pool.members(),
        [(taken.clone(), "taken".to_string())],
        "drain without --all"
    );
    pool.ok(&["drain", &pool.name, "--all"]);
    assert_eq!(pool.containers(), Vec::<String>::new());
    let filter = format!("label=io.dind-init.pool={}", pool.name);
    assert_eq!(
        engine_ok(pool.engine, &["volume", "ls", "-q", "--filter", &filter]),
        "",
        "drain --all left the pool's claim volumes"
    );
    assert!(
        !refill_running(&pool.name),
        "a refill of {} still runs after drain --all",
        pool.name
    );
}

/// A `dind-init pool … refill POOL` process on this host.
fn refill_running(pool: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline")).is_ok_and(|bytes| {
            let line = String::from_utf8_lossy(&bytes).replace('\0', " ");
            line.contains(" pool ") && line.contains(&format!(" refill {pool} "))
        })
    })
}

/// A start that fails, saying why on its output.
const FAILING_SCRIPT: (&str, &str) = (
    "10-fail.sh",
    "[ \"$1\" = start ] && { echo 'db: cannot open /data: no such file'; exit 1; }; exit 0",
);

/// Eight processes take at once from a pool of two: all get a member of
/// their own; at no time do more than two untaken members exist (waiting
/// plus the refills' new ones); afterwards the pool is two again, not
/// more, and `ls` says so. A `fill` with a new size changes it.
pub(crate) fn eight_takes_on_a_pool_of_two_never_exceed_it(pool: &Pool, image: &str) {
    pool.fill(image, 2, true);
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (stop, peak) = (stop.clone(), peak.clone());
        let (engine_name, name) = (pool.engine, pool.name.clone());
        std::thread::spawn(move || {
            let filter = format!("label=io.dind-init.pool={name}");
            while !stop.load(Ordering::SeqCst) {
                let untaken = engine_ok(
                    engine_name,
                    &["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"],
                )
                .split_whitespace()
                .filter(|name| !name.contains("-taken"))
                .count();
                peak.fetch_max(untaken, Ordering::SeqCst);
            }
        })
    };
    let mut names = take_at_once(pool, 8);
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 8, "two takes got the same member: {names:?}");
    let during = peak.load(Ordering::SeqCst);
    assert!(
        during <= 2,
        "{during} untaken members at once in a pool of 2"
    );
    wait_for("the refills end with the pool full again", || {
        !refill_running(&pool.name) && pool.listing()["waiting"] == 2
    });
    stop.store(true, Ordering::SeqCst);
    watcher.join().unwrap();
    let peak = peak.load(Ordering::SeqCst);
    assert!(
        peak <= 2,
        "{peak} untaken members at once in a pool of 2, after the takes"
    );
    let listing = pool.listing();
    assert_eq!(
        (
            &listing["size"],
            &listing["waiting"],
            &listing["starting"],
            &listing["taken"]
        ),
        (
            &Value::from(2),
            &Value::from(2),
            &Value::from(0),
            &Value::from(8)
        ),
        "{listing}"
    );
    assert_eq!(pool.untaken().len(), 2, "{:?}", pool.untaken());

    let run_args: Vec<&str> = pool.run_args.iter().map(String::as_str).collect();
    pool.ok(&[
        &["fill", image, "--name", &pool.name, "--size", "1", "--"],
        &run_args[..],
    ]
    .concat());
    assert_eq!(pool.listing()["size"], 1);
    assert_eq!(pool.untaken().len(), 1, "{:?}", pool.untaken());
}

/// Members whose start fails: the pool replaces them within one budget
/// (three), whoever notices, then `take` fails with one line naming the
/// image, the member's last log lines and the command to see more; and
/// nothing starts any more until the next `fill`, however often one takes.
pub(crate) fn a_failing_image_spends_one_budget(pool: &Pool, image: &str) {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let created = || {
        let until = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1)
        .to_string();
        let filter = format!("label=io.dind-init.pool={}", pool.name);
        engine_ok(
            pool.engine,
            &[
                "events",
                "--since",
                &since,
                "--until",
                &until,
                "--filter",
                &filter,
                "--filter",
                "event=create",
                "--format",
                "{{.Actor.Attributes.name}}",
            ],
        )
        .lines()
        .count()
    };
    pool.fill(image, 2, false);
    let take = pool.run(&["take", &pool.name, "--timeout", "90"]);
    assert_eq!(take.status.code(), Some(1), "{}", text(&take));
    let stderr = String::from_utf8_lossy(&take.stderr);
    let line = stderr.trim();
    assert_eq!(line.lines().count(), 1, "{}", text(&take));
    for says in [
        format!("members of `{image}` fail to boot"),
        "db: cannot open /data: no such file".to_string(),
        format!("see `{} logs {}-", pool.engine, pool.name),
    ] {
        assert!(line.contains(&says), "no `{says}` in: {line}");
    }
    let before = created();
    assert!(
        before <= 5,
        "{before} members started for a pool of 2 with a budget of 3"
    );
    let again = pool.run(&["take", &pool.name, "--timeout", "90"]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(String::from_utf8_lossy(&again.stderr).contains("fail to boot"));
    assert!(
        !refill_running(&pool.name),
        "a refill runs on a broken pool"
    );
    assert_eq!(
        created(),
        before,
        "a take on a broken pool started a member"
    );
    assert!(
        pool.listing()["broken"]
            .as_str()
            .unwrap()
            .contains("fail to boot")
    );
}

/// A take whose stdout is closed fails with a line and gives the member
/// back (old: `println!` aborted, leaving a claim nobody holds); a claim
/// past its `--lease` is reclaimed by the next `ls`; `gc` and `drain`
/// without `--all` keep a claim in its lease.
pub(crate) fn claims_cannot_be_lost(pool: &Pool, image: &str) {
    pool.fill(image, 2, true);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let lost = pool
        .command(&["take", &pool.name, "--timeout", "120"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(lost.status.code(), Some(1), "{}", text(&lost));
    assert!(
        String::from_utf8_lossy(&lost.stderr).contains("the claim is undone"),
        "{}",
        text(&lost)
    );
    let members = pool.members();
    assert_eq!(members.len(), 2, "{members:?}");
    assert!(
        members.iter().all(|(_, state)| state == "ready"),
        "{members:?}"
    );

    let short = pool.ok(&["take", &pool.name, "--lease", "1"]);
    let kept = pool.take();
    wait_for("ls reclaims the claim past its lease", || {
        !pool.members().iter().any(|(name, _)| *name == short)
    });
    pool.ok(&["gc", &pool.name]);
    pool.ok(&["drain", &pool.name]);
    assert_eq!(pool.members(), [(kept, "taken".to_string())]);
}

/// A pool of one: a take and a release, and at once another take, which
/// waits for the refill on its way (old: "no pool", exit 4) and, with
/// `--json`, gives the member's address. Then a take
/// by a binary with the release's name (`dind-init-0.1.0-x86_64`) and a
/// drain right after: the drain finds its refill, nothing is left.
pub(crate) fn take_waits_for_a_refill_and_drain_finds_it(pool: &Pool, image: &str) {
    pool.fill(image, 1, true);
    let first = pool.take();
    pool.ok(&["release", &first]);
    let second = pool.run(&["take", &pool.name, "--timeout", "120", "--json"]);
    assert!(second.status.success(), "{}", text(&second));
    // --json gives the member's address, to reach its services directly.
    let answer: Value = serde_json::from_slice(&second.stdout).unwrap();
    assert!(
        answer["name"].as_str().unwrap().ends_with("-taken"),
        "{answer}"
    );
    let address = answer["address"].as_str().unwrap();
    assert_eq!(
        address,
        engine_ok(
            pool.engine,
            &[
                "inspect",
                "-f",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                answer["id"].as_str().unwrap(),
            ],
        ),
        "{answer}"
    );
    assert!(address.parse::<std::net::Ipv4Addr>().is_ok(), "{answer}");

    let mut argv = dind_init_argv();
    let binary = argv.pop().unwrap();
    let dir = std::env::temp_dir().join(unique("dind-init-release"));
    std::fs::create_dir_all(&dir).unwrap();
    let renamed = dir.join("dind-init-0.1.0-x86_64");
    std::fs::copy(&binary, &renamed).unwrap();
    let mut command = Command::new(argv.first().map_or(renamed.as_os_str(), |r| r.as_ref()));
    if !argv.is_empty() {
        command.arg(&renamed);
    }
    wait_for("the pool is full again", || pool.listing()["waiting"] == 1);
    let taken = command
        .args(["pool", "--engine", pool.engine, "take", &pool.name])
        .env("DIND_INIT_POOL_LOG", &pool.log)
        .output()
        .unwrap();
    assert!(taken.status.success(), "{}", text(&taken));
    pool.ok(&["drain", &pool.name, "--all"]);
    wait_for("the refill ends", || !refill_running(&pool.name));
    assert_eq!(pool.containers(), Vec::<String>::new());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs `check` on a fresh Docker pool of an image with `script`.
fn on_docker(script: (&str, &str), run_args: &[&str], check: fn(&Pool, &str)) {
    let image = TestImage::build("pool", &[script], false);
    check(&Pool::new("docker", run_args), &image.tag);
}

#[test]
#[ignore = "needs a Docker engine and `make base`; run by `make test`"]
fn docker_pool_concurrent_takes_never_share_a_member() {
    on_docker(WARM_SCRIPT, &[], concurrent_takes_never_share);
}

#[test]
#[ignore = "needs a Docker engine and `make base`; run by `make test`"]
fn docker_pool_eight_takes_on_a_pool_of_two_never_grow_it() {
    on_docker(
        WARM_SCRIPT,
        &[],
        eight_takes_on_a_pool_of_two_never_exceed_it,
    );
}

#[test]
#[ignore = "needs a Docker engine and `make base`; run by `make test`"]
fn docker_pool_an_image_whose_start_fails_spends_one_budget() {
    on_docker(FAILING_SCRIPT, &[], a_failing_image_spends_one_budget);
}

#[test]
#[ignore = "needs a Docker engine and `make base`; run by `make test`"]
fn docker_pool_claims_cannot_be_lost() {
    on_docker(WARM_SCRIPT, &[], claims_cannot_be_lost);
}

#[test]
#[ignore = "needs a Docker engine and `make base`; run by `make test`"]
fn docker_pool_take_waits_for_a_refill_and_drain_finds_it() {
    on_docker(WARM_SCRIPT, &[], take_waits_for_a_refill_and_drain_finds_it);
}

#[test]
#[ignore = "needs a Docker engine and `make base`; run by `make test`"]
fn docker_pool_a_member_killed_while_waiting_is_replaced() {
    on_docker(WARM_SCRIPT, &[], a_killed_member_is_replaced);
}

#[test]
#[ignore = "needs a Docker engine and `make base`; run by `make test`"]
fn docker_pool_a_member_turned_unhealthy_is_removed_with_its_reason_and_replaced() {
    on_docker(DAEMON_SCRIPT, &[], an_unhealthy_member_is_replaced);
}

#[test]
#[ignore = "needs a Docker engine and `make base`; run by `make test`"]
fn docker_pool_take_waits_for_the_first_ready_member_and_not_past_its_timeout() {
    let image = TestImage::build("pool-wait", &[WARM_SCRIPT], false);
    let hanging = TestImage::build("pool-never", &[HANGING_SCRIPT], false);
    take_waits_for_the_first_ready_and_no_longer(
        &Pool::new("docker", &[]),
        &image.tag,
        &Pool::new("docker", &[]),
        &hanging.tag,
    );
}

#[test]
#[ignore = "needs a Docker engine and `make base`; run by `make test`"]
fn docker_pool_release_removes_the_anonymous_volumes() {
    on_docker(
        WARM_SCRIPT,
        &["-v", "/scratch"],
        release_removes_the_anonymous_volumes,
    );
}

#[test]
#[ignore = "needs a Docker engine and `make base`; run by `make test`"]
fn docker_pool_drain_leaves_nothing_behind() {
    on_docker(WARM_SCRIPT, &[], drain_leaves_nothing_behind);
}

/// Each kind of bad input: one line naming the thing and what to do.
#[test]
#[ignore = "needs a Docker engine and `make base`; run by `make test`"]
fn docker_pool_bad_input_gets_one_line_each() {
    require_engine();
    let image = TestImage::build("pool-bad", &[WARM_SCRIPT], false);
    let other = TestImage::build("pool-bad-other", &[WARM_SCRIPT], false);
    let pool = Pool::new("docker", &[]);
    let refused = |args: &[&str], code: i32, says: &str| {
        let output = pool.run(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(code),
            "{args:?}: {}",
            text(&output)
        );
        assert!(stderr.contains(says), "{args:?}: {}", text(&output));
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{args:?}: {}",
            text(&output)
        );
    };
    // An image whose PID 1 is not dind-init.
    let context = std::env::temp_dir().join(unique("dind-init-e2e-not-dind-init"));
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        format!(
            "FROM {}\nENTRYPOINT [\"/bin/sh\"]\n",
            crate::docker::base_image()
        ),
    )
    .unwrap();
    let plain = TestImage {
        tag: format!("dind-init-e2e/{}:latest", unique("pool-plain")),
    };
    crate::docker::docker_ok(&["build", "-q", "-t", &plain.tag, context.to_str().unwrap()]);
    std::fs::remove_dir_all(&context).unwrap();
    refused(
        &["fill", &plain.tag, "--size", "1", "--name", &pool.name],
        4,
        "is not a dind-init image (its ENTRYPOINT is `/bin/sh`)",
    );
    refused(
        &["take", &pool.name],
        4,
        &format!("no pool {} in docker", pool.name),
    );
    refused(
        &["fill", &image.tag, "--size", "0"],
        2,
        "--size 0: a pool holds 1 to 64",
    );
    refused(
        &["fill", &image.tag, "--size", "5000"],
        2,
        "give a smaller number",
    );
    pool.fill(&image.tag, 1, false);
    refused(
        &["fill", &other.tag, "--size", "1", "--name", &pool.name],
        4,
        &format!("pool {} holds members of `{}`", pool.name, image.tag),
    );
    let output = pool
        .command(&["take", &pool.name])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(5), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("the docker engine is not running or not reachable"),
        "{}",
        text(&output)
    );
}
