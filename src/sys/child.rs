//! The child's side of a spawn, between fork and exec, as tini's
//! `isolate_child`/`restore_signals` and catatonit's `spawn_pid1` keep it:
//! what the container gave dind-init (saved first thing in `main`) given
//! back to the main command, a clean slate for scripts, and the terminal's
//! foreground for the main command.

use super::set_mask;
use std::os::unix::process::CommandExt;
use std::process::Command;

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
