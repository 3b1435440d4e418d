//! The system calls dind-init makes that the safe `nix` API does not cover,
//! plus the process-wide signal setup that must happen before any thread exists.

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::process::Command;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// The signals a fault of a process raises (SIGSEGV, ...). They are blocked
/// and read like any other, so one sent with `kill` is forwarded (as
/// dumb-init does); a real fault of dind-init's own still ends it, because
/// the kernel forces a fault signal through: it unblocks the signal, resets
/// it to its default action and, for PID 1, lifts the protection that drops
/// signals an init has no handler for (`force_sig_info_to_task`).
const FAULT_SIGNALS: [Signal; 7] = [
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGABRT,
    Signal::SIGTRAP,
    Signal::SIGSYS,
];

/// Whether `signo` is one a fault raises (SIGSEGV, ...): never given a role.
pub fn is_fault_signal(signo: i32) -> bool {
    FAULT_SIGNALS.iter().any(|&signal| signal as i32 == signo)
}

/// The signals dind-init reads from its signalfd: every signal number the
/// kernel has (1 to SIGRTMAX), real-time ones included. Built bit by bit,
/// because the C library's `sigfillset` and `sigaddset` leave out the
/// numbers it keeps for itself (musl: 32 to 34), which would then be neither
/// blocked nor read: as PID 1 such a signal would be dropped, and otherwise
/// kill dind-init.
pub fn handled_signals() -> SigSet {
    const WORD_BITS: usize = libc::c_ulong::BITS as usize;
    const WORDS: usize =
        std::mem::size_of::<libc::sigset_t>() / std::mem::size_of::<libc::c_ulong>();
    let mut words = [0 as libc::c_ulong; WORDS];
    for signo in 1..=libc::SIGRTMAX() {
        // Bit n-1 holds signal n, in words of the native size (the kernel's layout).
        let bit = usize::try_from(signo.saturating_sub(1)).unwrap_or(0);
        if let Some(word) = words.get_mut(bit / WORD_BITS) {
            *word |= 1 << (bit % WORD_BITS);
        }
    }
    // SAFETY: sigset_t is a plain array of WORDS native words on Linux
    // (glibc and musl alike), so an array of the same words has its size and
    // layout; the bits set are valid signal numbers.
    unsafe {
        let raw: libc::sigset_t = std::mem::transmute(words);
        SigSet::from_sigset_t_unchecked(raw)
    }
}

/// Blocks [`handled_signals`] in the calling thread. Called first thing in
/// `main`, so every thread started later inherits the mask and a signal that
/// arrives early waits in the queue instead of being lost. Children would
/// inherit the mask: see [`restore_inherited_in_child`] and [`clean_slate_in_child`].
pub fn block_handled_signals() -> nix::Result<SigSet> {
    let set = handled_signals();
    block_in_this_thread(&set)?;
    Ok(set)
}

/// Adds `set` to the calling thread's blocked mask with the system call
/// itself: glibc's `pthread_sigmask` silently leaves out the two signals
/// it keeps for itself (32 and 33).
fn block_in_this_thread(set: &SigSet) -> nix::Result<()> {
    let raw: &libc::sigset_t = set.as_ref();
    // SAFETY: rt_sigprocmask reads the kernel's sigset (8 bytes, `_NSIG / 8`
    // on every Linux architecture dind-init is built for) from a live
    // sigset_t, which is at least that long, and writes nothing (no old set).
    let result = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK,
            raw as *const libc::sigset_t,
            std::ptr::null_mut::<libc::sigset_t>(),
            KERNEL_SIGSET_BYTES,
        )
    };
    Errno::result(result).map(drop)
}

/// The size of the kernel's signal set: 64 signals.
const KERNEL_SIGSET_BYTES: libc::size_t = 8;

/// Blocks [`handled_signals`] again in the calling thread. The C library
/// unblocks the signals it keeps for itself when threads start (measured:
/// musl unblocks 33 and 34 in the thread that creates the first thread and
/// 33 in every new one; glibc 32 and 33), and such a signal, no longer
/// waiting for the signalfd, would be dropped as PID 1 and kill dind-init
/// otherwise. Called at the start of every thread dind-init runs and in
/// the main thread right after it starts the first one; what is left is
/// the moment between a thread's creation and its first instruction.
pub fn reblock_handled_signals() {
    if let Err(error) = block_in_this_thread(&handled_signals()) {
        tracing::error!("cannot block signals in a new thread: {error}");
    }
}

/// Sends signal number `signo` to `pid` (a negative pid names a process
/// group). Takes a raw number because real-time signals, which are forwarded
/// to the main command too, have no `nix::Signal` variant.
pub fn send_signal(pid: Pid, signo: i32) -> nix::Result<()> {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    let result = unsafe { libc::kill(pid.as_raw(), signo) };
    Errno::result(result).map(drop)
}

/// `waitpid(-1, WNOHANG)`: the pid and raw wait status of one child that
/// has ended, or `None` while every child is still running. The status is
/// returned undecoded (see `reaper::ChildExit::from_wait_status`): a
/// library that maps it to a signal enum fails for the numbers it cannot
/// name (real-time signals), after the kernel has already reaped the child.
pub fn wait_any_child() -> nix::Result<Option<(Pid, libc::c_int)>> {
    let mut status: libc::c_int = 0;
    // SAFETY: waitpid writes one int through the pointer, which points to a
    // live local of the right type; the other arguments are plain integers.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    match Errno::result(pid)? {
        0 => Ok(None),
        pid => Ok(Some((Pid::from_raw(pid), status))),
    }
}

/// Whether this process has any child, running or exited and not yet
/// reaped: `waitid(P_ALL, WNOHANG | WNOWAIT)` reaps nothing (the reaper
/// stays the one that does) and fails with ECHILD only when there is none.
/// With none, no process is left below us either (orphans of our
/// descendants are re-parented to PID 1 or to this subreaper), and a scan
/// of all of `/proc` can be skipped.
pub fn has_children() -> bool {
    // SAFETY: siginfo_t is plain data that waitid fills in; zeroed is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid writes one siginfo_t through the pointer, which points
    // to a live local of that type; WNOWAIT leaves every child waitable.
    let result = unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    !(result == -1 && Errno::last() == Errno::ECHILD)
}

/// Name of a signal number for logs: `SIGTERM`, or `SIGRT+3` for real-time signals.
pub fn signal_name(signo: i32) -> String {
    match Signal::try_from(signo) {
        Ok(signal) => signal.as_str().to_string(),
        Err(_) if signo >= libc::SIGRTMIN() => {
            format!("SIGRTMIN+{}", signo.saturating_sub(libc::SIGRTMIN()))
        }
        Err(_) => format!("signal {signo}"),
    }
}

/// Opens a non-blocking signalfd for `mask` (already blocked by the caller)
/// and registers it with the tokio reactor, which must be running.
pub fn async_signal_fd(mask: &SigSet) -> std::io::Result<AsyncFd<SignalFd>> {
    let fd = SignalFd::with_flags(mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
    // SAFETY: `SignalFd` owns its descriptor, closes it only on drop, and
    // always returns the same one from `as_raw_fd`: the AsyncFd owns it now.
    let registered = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) };
    registered.map_err(std::io::Error::from)
}

/// Makes `command`'s process the foreground process group of the terminal
/// on its stdin, when that is a terminal (`docker run -t`), in the child
/// before exec, as tini's `isolate_child` does: an interactive shell that
/// checks for job control first then finds itself in the foreground, and
/// nothing in between can read the terminal. SIGTTOU is blocked around the
/// call, since a background group that changes the terminal's group gets it.
pub fn take_terminal_in_child(command: &mut Command) {
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: isatty, getpgrp, tcsetpgrp,
    // sigemptyset, sigaddset and sigprocmask are, and it allocates nothing.
    unsafe {
        command.pre_exec(|| {
            if libc::isatty(libc::STDIN_FILENO) != 1 {
                return Ok(());
            }
            let mut ttou: libc::sigset_t = std::mem::zeroed();
            let mut previous: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut ttou);
            libc::sigaddset(&mut ttou, libc::SIGTTOU);
            libc::sigprocmask(libc::SIG_BLOCK, &ttou, &mut previous);
            // Failure (a terminal that is not our controlling one) leaves
            // the program without the terminal's foreground, as tini does.
            libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpgrp());
            libc::sigprocmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
            Ok(())
        });
    }
}
/// What the container gave dind-init when it started, saved by
/// [`save_inherited`] before anything changed it, so that the main command
/// can get it back exactly (tini's and catatonit's rule) while scripts get
/// a clean set.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inherited {
    /// The blocked signals, as the kernel's 64-bit mask (the C library's
    /// reserved numbers included, which its `sigprocmask` hides; musl's
    /// start-up has unblocked 33 and 34 before `main`, so those are lost).
    mask: u64,
    /// The signals whose action was "ignore", bit n-1 for signal n (32-34,
    /// which musl will not report, are left out; SIGPIPE is never seen
    /// ignored, since Rust's runtime ignores it before `main`).
    ignored: u64,
    /// `LISTEN_PID` named dind-init itself: the socket-activation fds were
    /// meant for it, and are passed on to the main command with
    /// `LISTEN_PID` rewritten to the main command's pid (catatonit's rule).
    listen_pid_is_ours: bool,
}

/// Set once by [`save_inherited`], first thing in `main`.
static INHERITED: std::sync::OnceLock<Inherited> = std::sync::OnceLock::new();

/// The file descriptors above stderr that dind-init was started with, for
/// the main command; marked close-on-exec by [`save_inherited`] so that no
/// script or daemon gets them, until [`close_inherited_fds`].
static INHERITED_FDS: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

/// Bit of signal `signo` in a kernel signal mask.
fn signal_bit(signo: i32) -> u64 {
    match u32::try_from(signo.saturating_sub(1)) {
        Ok(bit) if bit < 64 => 1 << bit,
        _ => 0,
    }
}

/// Saves the signal mask, the ignored signals and the open fds dind-init
/// was started with, before it blocks or opens anything (call it first in
/// `main`, while there is one thread). Then, for dind-init itself: SIGCHLD
/// back to its default action if it was ignored (the kernel would reap our
/// children before we could read their exit), and every inherited fd
/// above 2 close-on-exec.
pub fn save_inherited() {
    let mut mask: u64 = 0;
    // SAFETY: rt_sigprocmask with no new set only writes the current mask
    // into `mask`, whose 8 bytes are the kernel's sigset size on Linux.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK,
            std::ptr::null::<u64>(),
            &mut mask as *mut u64,
            std::mem::size_of::<u64>(),
        );
    }
    let mut ignored = 0;
    for signo in 1..=libc::SIGRTMAX() {
        if (32..=34).contains(&signo) || signo == libc::SIGKILL || signo == libc::SIGSTOP {
            continue;
        }
        // SAFETY: a query only (no new action); `current` is written by the call.
        let is_ignored = unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            libc::sigaction(signo, std::ptr::null(), &mut current) == 0
                && current.sa_sigaction == libc::SIG_IGN
        };
        if is_ignored {
            ignored |= signal_bit(signo);
        }
    }
    if ignored & signal_bit(libc::SIGCHLD) != 0 {
        // SAFETY: restores the default action of a signal we read from a
        // signalfd; no handler of ours is involved.
        unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
    }
    let own_pid = std::process::id().to_string();
    let listen_pid_is_ours = std::env::var_os("LISTEN_PID").is_some_and(|pid| pid == *own_pid);
    let _ = INHERITED.set(Inherited {
        mask,
        ignored,
        listen_pid_is_ours,
    });
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
                .filter(|&fd| fd > 2)
                .collect()
        })
        .unwrap_or_default();
    let mut kept = Vec::new();
    for fd in fds {
        // SAFETY: fcntl on a number that may not be open (the directory's
        // own fd, closed by now) fails with EBADF and changes nothing.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
            // SAFETY: as above; sets only the close-on-exec flag.
            unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) };
            kept.push(fd);
        }
    }
    *INHERITED_FDS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = kept;
}

fn inherited() -> Inherited {
    INHERITED.get().copied().unwrap_or_default()
}

/// Closes dind-init's copies of the inherited fds once the main command has
/// them (or when there is none), as catatonit does: PID 1 then holds no
/// pipe or socket open that was meant for the program.
pub fn close_inherited_fds() {
    let fds = std::mem::take(
        &mut *INHERITED_FDS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    );
    for fd in fds {
        // SAFETY: these numbers were open when dind-init started and
        // nothing of ours uses them: they are closed exactly once, here.
        unsafe { libc::close(fd) };
    }
}

/// Gives the main command what the container gave dind-init, in the child
/// before exec: the original signal mask (exactly, 32-34 included),
/// SIGCHLD ignored again if it was, the inherited fds (close-on-exec
/// cleared), and `LISTEN_PID` set to the main command's own pid when it
/// named dind-init. Other ignored signals stay ignored through exec by
/// themselves.
pub fn restore_inherited_in_child(command: &mut Command) {
    let saved = inherited();
    let fds = INHERITED_FDS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    // Room for `LISTEN_PID=` and any pid, written in the child.
    let mut listen_pid = [0u8; 32];
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: rt_sigprocmask, signal, fcntl and
    // getpid are; it allocates nothing, and writes only its own buffer and
    // one pointer of the child's copy of `environ`, which exec reads next.
    unsafe {
        command.pre_exec(move || {
            for &fd in &fds {
                libc::fcntl(fd, libc::F_SETFD, 0);
            }
            if saved.ignored & signal_bit(libc::SIGCHLD) != 0 {
                libc::signal(libc::SIGCHLD, libc::SIG_IGN);
            }
            if saved.listen_pid_is_ours {
                point_listen_pid_at_self(&mut listen_pid);
            }
            set_mask(saved.mask)
        });
    }
}

/// Sets the calling thread's blocked mask to the kernel mask `mask`.
fn set_mask(mask: u64) -> std::io::Result<()> {
    // SAFETY: rt_sigprocmask reads the 8 bytes of `mask` (the kernel's
    // sigset size on Linux) and writes nothing of ours.
    let result = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &mask as *const u64,
            std::ptr::null_mut::<u64>(),
            std::mem::size_of::<u64>(),
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

unsafe extern "C" {
    /// The process environment the C library's `execvp` passes on.
    static mut environ: *mut *mut libc::c_char;
}

/// In the child: points `environ`'s `LISTEN_PID=` entry at `buffer`, filled
/// with `LISTEN_PID=<our pid>`. Async-signal-safe: digits are written by
/// hand, nothing is allocated.
///
/// # Safety
/// Only between fork and exec, with `environ` the environment exec passes on.
unsafe fn point_listen_pid_at_self(buffer: &mut [u8; 32]) {
    const NAME: &[u8] = b"LISTEN_PID=";
    let mut digits = [0u8; 12];
    // SAFETY: getpid has no preconditions.
    let mut pid = u32::try_from(unsafe { libc::getpid() }).unwrap_or(0);
    let mut start = digits.len();
    loop {
        start = start.saturating_sub(1);
        if let Some(digit) = digits.get_mut(start) {
            *digit = b'0'.wrapping_add((pid % 10) as u8);
        }
        pid /= 10;
        if pid == 0 || start == 0 {
            break;
        }
    }
    let value = digits.get(start..).unwrap_or_default();
    for (slot, byte) in buffer
        .iter_mut()
        .zip(NAME.iter().chain(value).chain(std::iter::once(&0)))
    {
        *slot = *byte;
    }
    // SAFETY (of the reads below): `environ` is a null-terminated array of
    // pointers to null-terminated strings, as the C library keeps it.
    let mut entry = unsafe { environ };
    if entry.is_null() {
        return;
    }
    loop {
        let current = unsafe { *entry };
        if current.is_null() {
            return;
        }
        let is_listen_pid = NAME
            .iter()
            .enumerate()
            .all(|(i, &byte)| unsafe { *current.add(i) } as u8 == byte);
        if is_listen_pid {
            unsafe { *entry = buffer.as_mut_ptr().cast() };
            return;
        }
        entry = unsafe { entry.add(1) };
    }
}

/// What a script (and so every daemon it starts) gets, in the child before
/// exec, whatever the container gave dind-init: no blocked signal, every
/// signal at its default action (none ignored, SIGPIPE included), and no
/// fd but stdin, stdout and stderr. Without this a script would inherit
/// the container's ignored SIGTERM and its daemon would survive its stop.
pub fn clean_slate_in_child(command: &mut Command) {
    let ignored = inherited().ignored | signal_bit(libc::SIGPIPE);
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: signal, close_range and
    // rt_sigprocmask are, and it allocates nothing. close_range only marks
    // fds close-on-exec, so std's own error pipe still reports a failed exec.
    unsafe {
        command.pre_exec(move || {
            for signo in 1..=64 {
                if ignored & signal_bit(signo) != 0 {
                    libc::signal(signo, libc::SIG_DFL);
                }
            }
            // 32-34, which the C library neither reports nor sets: by the
            // system call, with the kernel's all-zero action (SIG_DFL).
            let default_action = [0u64; 4];
            for signo in 32..=34 {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    signo,
                    default_action.as_ptr(),
                    std::ptr::null_mut::<u64>(),
                    std::mem::size_of::<u64>(),
                );
            }
            // Kernels before 5.11 lack the flag: the inherited fds are
            // close-on-exec already (`save_inherited`).
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            set_mask(0)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether signal `signo` is in `set`, read from the raw words, since
    /// the C library's `sigismember` may refuse its own numbers.
    fn has(set: &SigSet, signo: usize) -> bool {
        const WORD_BITS: usize = libc::c_ulong::BITS as usize;
        const WORDS: usize =
            std::mem::size_of::<libc::sigset_t>() / std::mem::size_of::<libc::c_ulong>();
        let raw: &libc::sigset_t = set.as_ref();
        // SAFETY: the same layout as in `handled_signals`.
        let words: [libc::c_ulong; WORDS] = unsafe { std::mem::transmute(*raw) };
        words[(signo - 1) / WORD_BITS] & (1 << ((signo - 1) % WORD_BITS)) != 0
    }

    #[test]
    fn every_signal_number_is_handled() {
        let set = handled_signals();
        for signo in 1..=libc::SIGRTMAX() as usize {
            assert!(has(&set, signo), "signal {signo}");
        }
    }
}
