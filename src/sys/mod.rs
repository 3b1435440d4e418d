//! The raw system calls dind-init makes that the safe `nix` API does not
//! cover, and the process-wide signal setup that must happen before any
//! thread exists. What a child does between fork and exec (and the inherited
//! state it restores) is in [`child`].

mod child;

pub use child::{
    clean_slate_in_child, close_inherited_fds, restore_inherited_in_child, save_inherited,
    take_terminal_in_child,
};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;
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

/// Sets the calling thread's blocked mask to the kernel mask `mask`.
pub(in crate::sys) fn set_mask(mask: u64) -> std::io::Result<()> {
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
