//! Running dind-init for real: as PID 1 of a fresh PID namespace (`unshare
//! --fork --pid --mount-proc`), in a temporary directory of its own, with its
//! log collected line by line so a test can wait for a line instead of
//! sleeping. Every wait has a timeout and prints the whole log when it fails.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

/// How long any single wait of a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// The dind-init under test and how to start it: the binary cargo built,
/// or `DIND_INIT_TEST_BIN` (e.g. the aarch64 build), run through
/// `DIND_INIT_TEST_RUNNER` when set (e.g. `qemu-aarch64-static`).
pub fn dind_init_argv() -> Vec<String> {
    let binary = std::env::var("DIND_INIT_TEST_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_dind-init").to_string());
    match std::env::var("DIND_INIT_TEST_RUNNER") {
        Ok(runner) if !runner.is_empty() => vec![runner, binary],
        _ => vec![binary],
    }
}

/// Whether dind-init runs under an emulator (`DIND_INIT_TEST_RUNNER`, the
/// aarch64 suite under qemu-user). qemu-user keeps some host signals for
/// itself: it renumbers real-time signals in the wait statuses it hands on
/// (a child killed by 37 is reported as killed by 35), reserves 32-34, takes
/// the fault signals (SIGSEGV, SIGILL, ...) for its own emulation, and
/// shows its guest none of the dispositions its host process inherited. A
/// test of those signal numbers says so and checks nothing there; the
/// native run checks it.
pub fn under_emulation(test: &str) -> bool {
    let emulated = std::env::var("DIND_INIT_TEST_RUNNER").is_ok_and(|runner| !runner.is_empty());
    if emulated {
        eprintln!(
            "{test}: not checked under an emulator (qemu-user remaps and reserves these signals); the native run checks it"
        );
    }
    emulated
}

/// Starts `command` with the signal state a container's PID 1 gets from
/// its engine: nothing blocked, every signal at its default action, whatever
/// ran the tests (`nohup` ignores SIGHUP, a shell's background job SIGINT
/// and SIGQUIT), since dind-init hands that state on to its main command.
/// A test that wants another state sets it in a `pre_exec` of its own,
/// which runs after this one.
fn with_default_signal_state(command: &mut Command) {
    /// The kernel's `struct sigaction` (x86_64 and aarch64 alike).
    #[repr(C)]
    struct KernelSigaction {
        handler: libc::c_ulong,
        flags: libc::c_ulong,
        restorer: libc::c_ulong,
        mask: u64,
    }
    // SAFETY: between fork and exec only the rt_sigaction and
    // rt_sigprocmask system calls, which are async-signal-safe, on values
    // of the kernel's layout; nothing is allocated.
    unsafe {
        command.pre_exec(|| {
            let default = KernelSigaction {
                handler: libc::SIG_DFL as libc::c_ulong,
                flags: 0,
                restorer: 0,
                mask: 0,
            };
            // The raw system calls: the C library refuses its own numbers
            // (32 and 33 for glibc), which a parent may have ignored.
            for signo in 1..=64 {
                if signo != libc::SIGKILL && signo != libc::SIGSTOP {
                    libc::syscall(
                        libc::SYS_rt_sigaction,
                        signo,
                        &default as *const KernelSigaction,
                        std::ptr::null_mut::<KernelSigaction>(),
                        8usize,
                    );
                }
            }
            let nothing: u64 = 0;
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK,
                &nothing as *const u64,
                std::ptr::null_mut::<u64>(),
                8usize,
            );
            Ok(())
        });
    }
}

/// A command that runs dind-init directly (client, or init that is not PID 1).
pub fn dind_init() -> Command {
    let argv = dind_init_argv();
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]);
    with_default_signal_state(&mut command);
    command
}

/// A command that runs dind-init as PID 1 of a new PID namespace.
pub fn dind_init_in_namespace() -> Command {
    let mut command = Command::new("unshare");
    command
        .args(["--fork", "--pid", "--mount-proc"])
        .args(dind_init_argv());
    with_default_signal_state(&mut command);
    command
}

/// A temporary directory with an init.d, a socket path and a state path.
pub struct Sandbox {
    pub dir: PathBuf,
    pub init_d: PathBuf,
    pub socket: PathBuf,
    pub state: PathBuf,
}

impl Sandbox {
    pub fn new(name: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!(
            "dind-init-test-{}-{unique}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("init.d")).unwrap();
        Sandbox {
            init_d: dir.join("init.d"),
            socket: dir.join("control.sock"),
            state: dir.join("state/state.json"),
            dir,
        }
    }

    /// Path of a file in the sandbox.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes an executable init.d script with `body` after the shebang.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        self.executable(name, &format!("#!/bin/sh\n{body}\n"))
    }

    /// Writes an executable init.d file with exactly `content` (any `#!` line, or none).
    pub fn executable(&self, name: &str, content: &str) -> PathBuf {
        let path = self.init_d.join(name);
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// A script that appends `NAME ACTION` to `order.log` and exits 0.
    pub fn recording_script(&self, name: &str) -> PathBuf {
        self.recording_script_then(name, "true")
    }

    /// A script that appends `NAME ACTION` to `order.log`, then runs `rest`.
    pub fn recording_script_then(&self, name: &str, rest: &str) -> PathBuf {
        let log = self.path("order.log");
        self.script(
            name,
            &format!(
                "echo \"$(basename \"$0\") $1\" >> {}\n{rest}",
                log.display()
            ),
        )
    }

    /// A recording script whose start leaves `daemon` running in the
    /// background and whose stop ends it and waits for it, as a
    /// well-behaved init.d script does.
    pub fn daemon_script(&self, name: &str, daemon: &str) -> PathBuf {
        let pidfile = self.path(&format!("{name}.pid"));
        self.recording_script_then(
            name,
            &format!(
                r#"case "$1" in
start) {daemon} & echo $! > {pidfile} ;;
stop) pid=$(cat {pidfile}); kill "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.01; done ;;
esac"#,
                pidfile = pidfile.display()
            ),
        )
    }

    /// The lines of `order.log` so far.
    pub fn order(&self) -> Vec<String> {
        fs::read_to_string(self.path("order.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The command [`Sandbox::start`] runs: dind-init as PID 1 of a new PID
    /// namespace, with the sandbox's paths, then `args`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = dind_init_in_namespace();
        self.add_paths(&mut command, args);
        command
    }

    fn add_paths(&self, command: &mut Command, args: &[&str]) {
        command
            .arg("--init-dir")
            .arg(&self.init_d)
            .arg("--socket")
            .arg(&self.socket)
            .arg("--state")
            .arg(&self.state)
            .args(args)
            .env_remove("DIND_INIT_DIR")
            .env_remove("DIND_INIT_SOCKET")
            .env_remove("DIND_INIT_STATE")
            .stdin(Stdio::null());
    }

    /// Starts dind-init as PID 1 of a new PID namespace with `args` after the sandbox's paths.
    pub fn start(&self, args: &[&str]) -> Init {
        Init::spawn(self.command(args), true)
    }

    /// Starts a [`Sandbox::command`] the caller has set up further (its
    /// signal state, its fds) as PID 1 of a new PID namespace.
    pub fn start_command(&self, command: Command) -> Init {
        Init::spawn(command, true)
    }

    /// Starts dind-init as a plain child of the test (not PID 1: a subreaper).
    pub fn start_as_subreaper(&self, args: &[&str]) -> Init {
        let mut command = dind_init();
        self.add_paths(&mut command, args);
        Init::spawn(command, false)
    }

    /// [`Sandbox::start`] (PID 1) or [`Sandbox::start_as_subreaper`], for
    /// a test that checks both.
    pub fn start_as(&self, as_pid_1: bool, args: &[&str]) -> Init {
        if as_pid_1 {
            self.start(args)
        } else {
            self.start_as_subreaper(args)
        }
    }

    /// Like [`Sandbox::start`] with extra environment variables.
    pub fn start_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Init {
        let mut command = self.command(args);
        command.envs(env.iter().copied());
        Init::spawn(command, true)
    }

    /// Runs the client (`dind-init --socket SOCKET ARGS`) to completion.
    pub fn client(&self, args: &[&str]) -> Output {
        dind_init()
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .env_remove("DIND_INIT_SOCKET")
            .output()
            .unwrap()
    }

    /// `quiesce`, which must report commit-safe.
    pub fn quiesce_ok(&self) -> Output {
        let output = self.client(&["quiesce"]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "quiesce failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// `status --json`, parsed.
    pub fn status(&self) -> Value {
        let output = self.client(&["status", "--json"]);
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "status --json is not JSON ({e}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }

    /// Blocks until status reports `phase`.
    pub fn wait_phase(&self, phase: &str) -> Value {
        let output = self.client(&["status", "--json", "--wait", phase, "--timeout", "20"]);
        assert!(
            output.status.success(),
            "phase {phase} not reached: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A running dind-init in its PID namespace.
pub struct Init {
    /// `unshare`, or dind-init itself when started without a namespace.
    unshare: Child,
    /// dind-init's pid as the host sees it (PID 1 inside the namespace).
    pub pid: Pid,
    log: Arc<(Mutex<Vec<String>>, Condvar)>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Init {
    pub fn spawn(mut command: Command, namespaced: bool) -> Init {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut unshare = command.spawn().expect("cannot run unshare");
        let log = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let mut readers = Vec::new();
        for stream in [
            Box::new(unshare.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(unshare.stderr.take().unwrap()),
        ] {
            let log = log.clone();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    let (lines, changed) = &*log;
                    lines.lock().unwrap().push(line);
                    changed.notify_all();
                }
            }));
        }
        let pid = if namespaced {
            find_child(&mut unshare)
        } else {
            Pid::from_raw(unshare.id() as i32)
        };
        Init {
            unshare,
            pid,
            log,
            readers,
        }
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.0.lock().unwrap().join("\n")
    }

    /// Waits for a log line containing `needle` and returns it.
    pub fn wait_for_line(&self, needle: &str) -> String {
        self.wait_for_nth_line(needle, 1)
    }

    /// Waits until `count` log lines contain `needle`; returns the last of them.
    pub fn wait_for_nth_line(&self, needle: &str, count: usize) -> String {
        let (lines, changed) = &*self.log;
        let deadline = Instant::now() + WAIT;
        let mut guard = lines.lock().unwrap();
        loop {
            let found: Vec<_> = guard.iter().filter(|l| l.contains(needle)).collect();
            if found.len() >= count {
                return found[count - 1].clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no line {count}x `{needle}` within {WAIT:?}; log:\n{}",
                guard.join("\n")
            );
            guard = changed.wait_timeout(guard, left).unwrap().0;
        }
    }

    /// Sends `signal` to dind-init itself.
    pub fn signal(&self, signal: Signal) {
        kill(self.pid, signal).unwrap();
    }

    /// Waits for dind-init to exit and returns its exit code.
    pub fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.unshare.try_wait().unwrap() {
                // Everything in the namespace died with its PID 1, so the
                // pipes are closed and the readers end after the last line.
                for reader in self.readers.drain(..) {
                    let _ = reader.join();
                }
                return status.code().unwrap_or_else(|| {
                    panic!("unshare died of a signal: {status:?}\n{}", self.log())
                });
            }
            assert!(
                Instant::now() < deadline,
                "dind-init did not exit within {WAIT:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every process in the namespace but PID 1.
    pub fn processes(&self) -> Vec<Process> {
        descendants(self.pid.as_raw())
    }
}

impl Drop for Init {
    fn drop(&mut self) {
        // SIGKILL to a namespace's PID 1 kills everything in it.
        let _ = kill(self.pid, Signal::SIGKILL);
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
        // `unshare` may be reaped before the PID 1 it forked has finished
        // dying; until then its control socket still listens, and the next
        // init a test starts on the same paths would find it live. Its
        // files are closed once it is a zombie with no thread left but the
        // leader (a zombie leader's other threads may still be exiting, and
        // they share its file table).
        let deadline = Instant::now() + WAIT;
        let dying = |pid: Pid| {
            fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                let fields: Vec<&str> = stat
                    .rsplit_once(')')
                    .map_or("", |(_, rest)| rest)
                    .split_whitespace()
                    .collect();
                let zombie = fields.first() == Some(&"Z");
                let threads: usize = fields.get(17).and_then(|n| n.parse().ok()).unwrap_or(1);
                !(zombie && threads <= 1)
            })
        };
        while dying(self.pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Waits until `unshare` has forked dind-init and returns its pid; when
/// `unshare` is already gone (dind-init exited at once), the pid no longer
/// matters and `unshare`'s own is returned.
pub fn find_child(unshare: &mut Child) -> Pid {
    let parent = unshare.id() as i32;
    let deadline = Instant::now() + WAIT;
    loop {
        let children = fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
            .unwrap_or_default();
        if let Some(pid) = children.split_whitespace().next() {
            return Pid::from_raw(pid.parse().unwrap());
        }
        if unshare.try_wait().unwrap().is_some() {
            return Pid::from_raw(parent);
        }
        assert!(Instant::now() < deadline, "unshare never started dind-init");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A process as seen from the host.
#[derive(Debug, Clone)]
pub struct Process {
    /// Its pid as the host sees it.
    pub pid: i32,
    /// State letter of `/proc/PID/stat`; `Z` for a zombie.
    pub state: char,
    pub cmdline: String,
}

/// Every descendant of `root`, read from `/proc/PID/task/*/children`.
pub fn descendants(root: i32) -> Vec<Process> {
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(parent) = queue.pop() {
        let Ok(tasks) = fs::read_dir(format!("/proc/{parent}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children = fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for pid in children
                .split_whitespace()
                .filter_map(|c| c.parse::<i32>().ok())
            {
                queue.push(pid);
                let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                    continue;
                };
                let state = stat[stat.rfind(')').unwrap_or(0) + 1..]
                    .trim_start()
                    .chars()
                    .next()
                    .unwrap_or('?');
                let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&cmdline)
                    .replace('\0', " ")
                    .trim()
                    .to_string();
                found.push(Process {
                    pid,
                    state,
                    cmdline,
                });
            }
        }
    }
    found
}

/// Polls `condition` until it holds, failing after [`WAIT`] with `what`.
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
