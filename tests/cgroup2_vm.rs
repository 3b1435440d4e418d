//! The L1 of GitHub's hosted runners and current distributions: a cgroup v2
//! Docker host, booted as a VM from Debian's packages by
//! scripts/cgroup2-vm/ (kernel 6.1, docker.io 20.10, overlay2; TCG where
//! the CPU has no hardware virtualization). The L2 image of `make dind-l2`
//! with the nesting and dockerd steps is loaded into the VM's engine; there
//! the nesting step must give an L3 its memory and pids limits while
//! `docker exec`s race it, and refuse the host's cgroup namespace and a
//! read-only cgroup2 with its line. The VM is killed when the test ends,
//! also when it fails; its built pieces stay cached for the next run.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::dind::run_flags_on;
use crate::docker::{Container, base_image, engine, engine_ok, repo_root, require_engine, unique};
use crate::overlay2::{client_wrapper, load_into};

/// How long the boot may take until the guest's dockerd answers: ~100 s
/// under TCG on the test hosts' 2 shared cores.
const BOOT_WAIT: Duration = Duration::from_secs(600);

/// The cgroup v2 VM, its qemu killed on drop.
struct Cgroup2Vm {
    qemu: Child,
    /// The client wrapper, the console log.
    dir: PathBuf,
    /// `docker` for the guest's engine, for `Container::run_on`.
    cli: &'static str,
}

impl Cgroup2Vm {
    fn boot() -> Self {
        let built = Command::new(repo_root().join("scripts/cgroup2-vm/build"))
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(built.status.success(), "scripts/cgroup2-vm/build failed");
        let pieces = String::from_utf8_lossy(&built.stdout).trim().to_string();
        let dir = PathBuf::from("/tmp").join(unique("dind-init-cg2vm"));
        fs::create_dir_all(&dir).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let console = fs::File::create(dir.join("console.log")).unwrap();
        let qemu = Command::new(repo_root().join("scripts/cgroup2-vm/run"))
            .arg(&pieces)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(console.try_clone().unwrap())
            .stderr(console)
            .spawn()
            .unwrap();
        let cli = client_wrapper(&dir, &format!("tcp://127.0.0.1:{port}"));
        let mut vm = Cgroup2Vm { qemu, dir, cli };
        let began = Instant::now();
        while !engine(cli, &["version"]).status.success() {
            if let Some(status) = vm.qemu.try_wait().unwrap() {
                panic!(
                    "qemu ended ({status}) before the guest's dockerd answered:\n{}",
                    vm.console()
                );
            }
            assert!(
                began.elapsed() < BOOT_WAIT,
                "the guest's dockerd did not answer within {BOOT_WAIT:?}:\n{}",
                vm.console()
            );
            std::thread::sleep(Duration::from_secs(1));
        }
        println!(
            "figure cgroup v2 VM: dockerd answers {:?} after qemu started",
            began.elapsed()
        );
        vm
    }

    /// The last lines the guest wrote on its serial console.
    fn console(&self) -> String {
        let text = fs::read_to_string(self.dir.join("console.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Cgroup2Vm {
    fn drop(&mut self) {
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// An init.d script that runs before the nesting step and leaves a stand-in
/// for a `docker exec` arriving in the root cgroup while the step moves
/// processes out of it: each time the stand-in finds itself moved to /init
/// it writes itself back into the root cgroup (at once: its poll forks
/// nothing), three times or until the root refuses it (the step enabled the
/// controllers), then sleeps. Real `docker exec`s rarely land in that window.
const EXEC_STAND_IN: &str = r#"#!/bin/sh
[ "$1" = start ] || exit 0
sh -c 'entered=0
while [ "$entered" -lt 3 ]; do
    read -r cgroup </proc/self/cgroup
    [ "$cgroup" = 0::/init ] || continue
    echo $$ 2>/dev/null >/sys/fs/cgroup/cgroup.procs || break
    entered=$((entered + 1))
done
exec sleep infinity' </dev/null >/dev/null 2>&1 &
"#;

/// Builds, in the guest's engine, the L2 image (loaded from the host) with
/// the exec stand-in, the DinD nesting and dockerd steps, and a static
/// busybox for an L3.
fn nesting_l2_image(vm: &Cgroup2Vm) -> String {
    let l2 =
        std::env::var("DIND_L2_IMAGE").unwrap_or_else(|_| "dind-init/dind-l2:storage".to_string());
    load_into(vm.cli, &l2);
    // run-flags.sh probes the engine with the base image.
    load_into(vm.cli, &base_image());
    let context = vm.dir.join("context");
    fs::create_dir_all(&context).unwrap();
    for script in ["10-cgroup-nesting.sh", "40-dockerd.sh"] {
        fs::copy(
            repo_root().join("init.d-examples/dind").join(script),
            context.join(script),
        )
        .unwrap();
    }
    fs::write(context.join("05-exec-stand-in.sh"), EXEC_STAND_IN).unwrap();
    fs::set_permissions(
        context.join("05-exec-stand-in.sh"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let busybox = engine_ok("sh", &["-c", "command -v busybox"]);
    fs::copy(busybox, context.join("busybox")).unwrap();
    fs::write(
        context.join("Dockerfile"),
        format!(
            "FROM {l2}\nCOPY 05-exec-stand-in.sh 10-cgroup-nesting.sh 40-dockerd.sh /etc/dind-init/init.d/\nCOPY busybox /l3/bin/busybox\n"
        ),
    )
    .unwrap();
    let image = "dind-init-e2e/cgroup2-l2:latest".to_string();
    engine_ok(
        vm.cli,
        &["build", "-q", "-t", &image, &context.display().to_string()],
    );
    image
}

/// Runs `image` with `flags` on the VM's engine; it must exit 3 (a failed
/// start) having logged `line`.
fn assert_refused(vm: &Cgroup2Vm, image: &str, flags: &[&str], line: &str) {
    let l2 = Container::run_on(vm.cli, image, flags);
    let code = engine_ok(vm.cli, &["wait", &l2.id]);
    let logs = l2.logs();
    assert_eq!(code, "3", "{flags:?}: {logs}");
    assert!(logs.contains(line), "{flags:?}: no {line:?} in:\n{logs}");
}

#[test]
#[ignore = "needs a Docker engine, root, qemu-system-x86, debootstrap and Debian's archive; run by `make test`"]
fn on_a_cgroup_v2_host_the_nesting_step_gives_l3_limits_while_execs_race_it_and_refuses_what_it_cannot_nest()
 {
    require_engine();
    let vm = Cgroup2Vm::boot();
    assert_eq!(
        engine_ok(vm.cli, &["info", "-f", "{{.CgroupVersion}}"]),
        "2"
    );
    let image = nesting_l2_image(&vm);
    let flags = run_flags_on(vm.cli);
    let mut l2_flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    // The inner engine's overlay2 needs a data root that is not overlayfs.
    l2_flags.extend(["-v", "/var/lib/docker", "-e", "DIND_DOCKERD_IPTABLES=0"]);

    // The stand-in walks back into the root cgroup after each move, and
    // real `docker exec`s run from the moment the container starts until it
    // runs: each that lands between the move and the write fails the write.
    let l2 = Container::run_on(vm.cli, &image, &l2_flags);
    let running = Arc::new(AtomicBool::new(false));
    let racers: Vec<_> = (0..4)
        .map(|_| {
            let (cli, id, running) = (vm.cli, l2.id.clone(), Arc::clone(&running));
            std::thread::spawn(move || {
                let mut execs = 0;
                while !running.load(Ordering::SeqCst) {
                    engine(cli, &["exec", &id, "true"]);
                    execs += 1;
                }
                execs
            })
        })
        .collect();
    let status = l2.wait_phase("running");
    running.store(true, Ordering::SeqCst);
    let execs: u32 = racers.into_iter().map(|racer| racer.join().unwrap()).sum();
    let logs = l2.logs();
    assert_eq!(status["healthy"], true, "{logs}");
    let nested = logs
        .lines()
        .find(|line| line.contains("cgroup v2: processes moved to /init"))
        .unwrap_or_else(|| panic!("no nesting line in:\n{logs}"));
    let tries: u32 = nested
        .split("(try ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|try_| try_.parse().ok())
        .unwrap_or_else(|| panic!("no try count in {nested:?}"));
    assert!(tries >= 2, "the stand-in never raced the move: {nested}");
    assert!(
        nested.contains("controllers enabled for children:")
            && nested.contains(" memory")
            && nested.contains(" pids"),
        "{nested}"
    );
    println!("figure cgroup v2 VM: {execs} docker execs raced the boot; {nested}");

    let limits = l2.exec_ok(&[
        "sh",
        "-c",
        "tar -C /l3 -c . | docker import - l3 >/dev/null && \
         docker run --rm --memory 64m --pids-limit 50 l3 /bin/busybox cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max",
    ]);
    assert_eq!(limits, "67108864\n50");
    drop(l2);

    let mut host_namespace = l2_flags.clone();
    host_namespace.push("--cgroupns=host");
    assert_refused(
        &vm,
        &image,
        &host_namespace,
        "cgroup v2: this container shares the host's cgroup namespace",
    );
    // Without --privileged, Docker mounts the container's cgroup2 read-only.
    assert_refused(
        &vm,
        &image,
        &[
            "--cap-add",
            "SYS_ADMIN",
            "--security-opt",
            "apparmor=unconfined",
        ],
        "cgroup v2: /sys/fs/cgroup is mounted read-only",
    );
}
