//! Reads every handled signal from one signalfd: SIGCHLD makes the reaper
//! sweep; a signal meant for the main command is forwarded to it right here,
//! without waiting for the supervisor; and every signal but SIGCHLD also
//! becomes a supervisor event. Signals were blocked before any thread
//! existed, so none is lost or run in a handler.

use std::sync::Arc;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc::UnboundedSender;

use crate::config::SignalRoles;
use crate::event::Event;
use crate::reaper::Reaper;
use crate::sys::signal_name;

/// Whether a signal is passed on to the main command: all but those dind-init
/// acts on itself (SIGCHLD: reap; the quiesce and resume signals, SIGUSR1
/// and SIGUSR2 unless set otherwise) and the terminal's background signals
/// SIGTTIN and SIGTTOU, which PID 1 ignores as tini does. SIGTERM, SIGINT
/// and SIGQUIT are forwarded and may also start the shutdown (see
/// `supervisor::intent::shutdown_request`).
pub fn is_forwarded(signo: i32, roles: &SignalRoles) -> bool {
    let own = [roles.quiesce, roles.resume].contains(&Some(signo));
    !own && !matches!(
        Signal::try_from(signo),
        Ok(Signal::SIGCHLD | Signal::SIGTTIN | Signal::SIGTTOU)
    )
}

fn forward(reaper: &Reaper, signo: i32) {
    match reaper.signal_main(signo) {
        Ok(true) => {}
        Ok(false) => tracing::debug!("{} not forwarded: no main command runs", signal_name(signo)),
        Err(error) => tracing::warn!(
            "cannot forward {} to the main command: {error}",
            signal_name(signo)
        ),
    }
}

/// Runs for the life of the process.
pub async fn run(
    signals: AsyncFd<SignalFd>,
    roles: SignalRoles,
    reaper: Arc<Reaper>,
    events: UnboundedSender<Event>,
) {
    loop {
        let mut ready = match signals.readable().await {
            Ok(ready) => ready,
            Err(error) => {
                tracing::error!("waiting on the signalfd failed: {error}");
                continue;
            }
        };
        let mut sweep_needed = false;
        loop {
            match ready.get_inner().read_signal() {
                Ok(Some(info)) => {
                    let signo = info.ssi_signo as i32;
                    if signo == Signal::SIGCHLD as i32 {
                        sweep_needed = true;
                    } else {
                        if is_forwarded(signo, &roles) {
                            forward(&reaper, signo);
                        }
                        // The supervisor lives as long as this task; a closed
                        // channel means the process is exiting anyway.
                        let _ = events.send(Event::Signal(signo));
                    }
                }
                Ok(None) => {
                    ready.clear_ready();
                    break;
                }
                Err(Errno::EINTR) => continue,
                Err(error) => {
                    tracing::error!("reading the signalfd failed: {error}");
                    ready.clear_ready();
                    break;
                }
            }
        }
        if sweep_needed {
            let sweep = reaper.reap_all();
            if sweep.orphans > 0 {
                tracing::debug!("reaped {} orphaned process(es)", sweep.orphans);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_forwarded_to_the_main_command() {
        let is_forwarded = |signo| is_forwarded(signo, &SignalRoles::default());
        for signal in [
            Signal::SIGTSTP,
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGQUIT,
            Signal::SIGHUP,
            Signal::SIGWINCH,
            Signal::SIGALRM,
        ] {
            assert!(is_forwarded(signal as i32), "{signal}");
        }
        for signal in [
            Signal::SIGCHLD,
            Signal::SIGUSR1,
            Signal::SIGUSR2,
            Signal::SIGTTIN,
            Signal::SIGTTOU,
        ] {
            assert!(!is_forwarded(signal as i32), "{signal}");
        }
        assert!(is_forwarded(libc::SIGRTMIN() + 3));
        for internal in 32..=34 {
            assert!(is_forwarded(internal), "signal {internal}");
        }
    }

    #[test]
    fn a_signal_without_a_role_is_forwarded() {
        let roles = SignalRoles {
            quiesce: Some(Signal::SIGHUP as i32),
            resume: None,
        };
        assert!(!is_forwarded(Signal::SIGHUP as i32, &roles));
        assert!(is_forwarded(Signal::SIGUSR1 as i32, &roles));
        assert!(is_forwarded(Signal::SIGUSR2 as i32, &roles));
    }
}
