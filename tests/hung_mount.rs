//! A process stuck on a hung mount (issue 18, item 7): its memory-map lock
//! is held by a thread waiting on a FUSE server that never answers, with a
//! writer queued behind it, so reading its `/proc/PID/cmdline` blocks in
//! the kernel, as `ps` does beside a dead NFS server. PID 1 reads command
//! lines for the stray check, the daemon watch and the teardown; none of
//! that may stop it forwarding signals, reaping, answering `status` or
//! answering a quiesce.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::harness::{Init, Sandbox, WAIT, wait_until};
use crate::hung_fuse::HungFuse;

/// tests/helpers/stuck_mm.c, built with the C compiler the Rust toolchain links with.
fn build_stuck_mm(sandbox: &Sandbox) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/stuck_mm.c");
    let binary = sandbox.path("stuck_mm");
    let built = Command::new("cc")
        .args(["-O1", "-pthread", "-o"])
        .arg(&binary)
        .arg(&source)
        .status()
        .expect("cc (the C compiler cargo links with) is not on PATH");
    assert!(built.success(), "building {}", source.display());
    binary
}

/// `init`'s children with their `/proc/PID/stat` lines, from `stat` alone
/// (reading a stuck process's command line would block this test too).
fn children_with_stat(init: i32) -> Vec<(i32, String)> {
    fs::read_to_string(format!("/proc/{init}/task/{init}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|pid| pid.parse().ok())
        .filter_map(|pid| Some((pid, fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)))
        .collect()
}

/// The host pids of `init`'s children named `comm`.
fn children_named(init: i32, comm: &str) -> Vec<i32> {
    children_with_stat(init)
        .into_iter()
        .filter(|(_, stat)| stat.contains(&format!("({comm})")))
        .map(|(pid, _)| pid)
        .collect()
}

/// Whether any child of `init` is a zombie.
fn has_a_zombie_child(init: i32) -> bool {
    children_with_stat(init).iter().any(|(_, stat)| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z'))
    })
}

/// dind-init as PID 1 with a main command and one script whose daemon is
/// stuck on a hung mount, made stuck for real before this returns.
struct StuckDaemon {
    sandbox: Sandbox,
    fuse: HungFuse,
    init: Init,
    /// Where the main command records `hup` and `orphan-exited`.
    events: PathBuf,
    /// Ends with `true` once a reading of the stuck process's command line
    /// by this test comes back (it blocks while the mount hangs).
    command_line_read: mpsc::Receiver<bool>,
}

impl StuckDaemon {
    fn start() -> StuckDaemon {
        let sandbox = Sandbox::new("hung-mount");
        let fuse = HungFuse::mount(&sandbox.path("mnt"));
        let stuck_mm = build_stuck_mm(&sandbox);
        let go = sandbox.path("go");
        nix::unistd::mkfifo(&go, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let ready = sandbox.path("stuck");
        let events = sandbox.path("events");
        // The daemon cannot be stopped while it is stuck, so its stop leaves
        // it: at a quiesce it is a stray, whose command line the stray check reads.
        sandbox.script(
            "20-stuck.sh",
            &format!(
                "[ \"$1\" = start ] && [ ! -e {ready} ] && {} {} {} {ready} &\nexit 0",
                stuck_mm.display(),
                fuse.file().display(),
                go.display(),
                ready = ready.display()
            ),
        );
        // On SIGHUP the main command records it and leaves an orphan
        // behind, which PID 1 must reap.
        let main = format!(
            "trap '(sleep 0.1; echo orphan-exited >> {events}) & echo hup >> {events}' HUP; \
             while :; do sleep 0.05; done",
            events = events.display()
        );
        let init = sandbox.start(&["--settle", "0.5", "--grace", "1", "--", "sh", "-c", &main]);
        init.wait_for_line("running: 1 script(s) started");

        // Make it stuck: a read held by the server, then a writer queued behind it.
        fuse.wait_for_a_held_read();
        fs::write(&go, "go").unwrap();
        wait_until("the stuck process's writer waits for the lock", || {
            ready.exists()
        });
        let stuck = children_named(init.pid.as_raw(), "stuck_mm");
        assert_eq!(
            stuck.len(),
            1,
            "the stuck process is PID 1's child: {stuck:?}"
        );
        // Precondition: reading its command line really blocks (else these
        // tests would check nothing).
        let (read_done, command_line_read) = mpsc::channel();
        let stuck_pid = stuck[0];
        std::thread::spawn(move || {
            let _ = read_done.send(fs::read(format!("/proc/{stuck_pid}/cmdline")).is_ok());
        });
        assert!(
            command_line_read
                .recv_timeout(Duration::from_secs(1))
                .is_err(),
            "reading the stuck process's command line did not block: no hang to test"
        );
        StuckDaemon {
            sandbox,
            fuse,
            init,
            events,
            command_line_read,
        }
    }

    fn recorded(&self, line: &str) -> bool {
        fs::read_to_string(&self.events).is_ok_and(|events| events.lines().any(|l| l == line))
    }

    /// The mount comes back; the test's own read of the command line ends.
    fn release(&self) {
        self.fuse.release();
        assert!(
            self.command_line_read.recv_timeout(WAIT).is_ok(),
            "the command line read did not end once the mount came back"
        );
    }
}

#[test]
fn a_process_stuck_on_a_hung_mount_does_not_wedge_pid_1() {
    let mut stuck = StuckDaemon::start();
    let (sandbox, init) = (&stuck.sandbox, &stuck.init);

    // A quiesce reads the stray's command line: it answers, naming it by its name.
    let quiesce = sandbox.client(&["quiesce", "--timeout", "20"]);
    let answer = String::from_utf8_lossy(&quiesce.stderr);
    assert_eq!(quiesce.status.code(), Some(1), "{answer}\n{}", init.log());
    assert!(
        answer.contains("NOT safe to commit") && answer.contains("[stuck_mm]"),
        "{answer}"
    );

    // Signals are forwarded, and an orphan is reaped.
    init.signal(Signal::SIGHUP);
    wait_until("the main command got SIGHUP", || stuck.recorded("hup"));
    wait_until("the orphan exited", || stuck.recorded("orphan-exited"));
    wait_until("PID 1 reaped the orphan", || {
        !has_a_zombie_child(init.pid.as_raw())
    });

    // status answers, and resume starts the scripts again.
    let status = sandbox.status();
    assert_eq!(status["phase"], "quiesced", "{status}");
    let resumed = sandbox.client(&["resume", "--timeout", "20"]);
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );

    // The mount comes back: the stuck process can die, and PID 1 exits
    // with the main command's status.
    stuck.release();
    stuck.init.signal(Signal::SIGTERM);
    assert_eq!(stuck.init.wait_exit(), 143, "{}", stuck.init.log());
}

#[test]
fn a_shutdown_beside_a_stuck_process_goes_through_its_steps() {
    let mut stuck = StuckDaemon::start();
    stuck.init.signal(Signal::SIGTERM);
    // The teardown names what outlived the grace period (reading its
    // command line), then sends SIGKILL. Its steps end while the process is
    // still stuck; only the kernel then holds PID 1's exit until every
    // process of the namespace has gone, which the stuck one can do only
    // once the mount comes back.
    let killed = stuck.init.wait_for_line("sending SIGKILL");
    assert!(killed.contains("([stuck_mm])"), "{killed}");
    stuck
        .init
        .wait_for_line("shutdown complete: exiting with code 143");
    stuck.release();
    assert_eq!(stuck.init.wait_exit(), 143, "{}", stuck.init.log());
}
