//! The system calls dind-init makes that the safe `nix` API does not cover,
//! plus the process-wide signal setup that must happen before any thread exists.

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::process::Command;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Signals that are raised synchronously by a fault in this process; blocking
/// them would turn a crash into a hang, so they keep their default action.
const SYNCHRONOUS_SIGNALS: [Signal; 7] = [
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGABRT,
    Signal::SIGTRAP,
    Signal::SIGSYS,
];

/// The signals dind-init reads from its signalfd: every signal, real-time ones
/// included, except the synchronous ones.
pub fn handled_signals() -> SigSet {
    let mut set = SigSet::all();
    for signal in SYNCHRONOUS_SIGNALS {
        set.remove(signal);
    }
    set
}

/// Blocks [`handled_signals`] in the calling thread. Called first thing in
/// `main`, so every thread started later inherits the mask and a signal that
/// arrives early waits in the queue instead of being lost. Children would
/// inherit the mask (std's `Command` keeps it): see [`reset_signals_in_child`].
pub fn block_handled_signals() -> nix::Result<SigSet> {
    let set = handled_signals();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    Ok(set)
}

/// Sends signal number `signo` to `pid` (a negative pid names a process
/// group). Takes a raw number because real-time signals, which are forwarded
/// to the main command too, have no `nix::Signal` variant.
pub fn send_signal(pid: Pid, signo: i32) -> nix::Result<()> {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    let result = unsafe { libc::kill(pid.as_raw(), signo) };
    Errno::result(result).map(drop)
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

/// Makes `command`'s process start with no blocked signals and SIGPIPE at
/// its default action, as a program expects from its parent; without this
/// every script and daemon would inherit PID 1's blocked mask and ignore
/// `kill`.
pub fn reset_signals_in_child(command: &mut Command) {
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: sigemptyset, sigprocmask and
    // signal are, and it allocates nothing.
    unsafe {
        command.pre_exec(|| {
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            Ok(())
        });
    }
}
