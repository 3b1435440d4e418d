//! Reads every handled signal from one signalfd: SIGCHLD makes the reaper
//! sweep, every other signal becomes a supervisor event. Signals were
//! blocked before any thread existed, so none is lost or run in a handler.

use std::sync::Arc;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc::UnboundedSender;

use crate::reaper::Reaper;
use crate::supervisor::Event;

/// Runs for the life of the process.
pub async fn run(signals: AsyncFd<SignalFd>, reaper: Arc<Reaper>, events: UnboundedSender<Event>) {
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
