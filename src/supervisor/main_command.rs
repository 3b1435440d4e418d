//! The main command given after `--`: its status before it runs, spawning it
//! once the first start round is done, and noting its exit, which starts
//! the shutdown.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::event::Event;
use crate::reaper::ChildExit;
use crate::status::{MainState, MainStatus};
use crate::sys::{close_inherited_fds, restore_inherited_in_child, take_terminal_in_child};
use crate::text::escape_controls;

use super::Supervisor;
use super::intent::ShutdownCause;

/// The status of a main command not started yet; `None` when there is none.
pub(super) fn initial_status(command: &[OsString]) -> Option<MainStatus> {
    (!command.is_empty()).then(|| MainStatus {
        command: command
            .iter()
            .map(|a| escape_controls(&a.to_string_lossy()).into_owned())
            .collect(),
        pid: None,
        state: MainState::Pending,
        exit_code: None,
    })
}

impl Supervisor {
    /// The main command's pid while it runs.
    pub(super) fn main_pid(&self) -> Option<i32> {
        let main = self.main.as_ref()?;
        (main.state == MainState::Running)
            .then_some(main.pid)
            .flatten()
    }

    pub(super) fn start_main(&mut self) {
        let Some(main) = &mut self.main else { return };
        let Some((program, args)) = self.config.main_command.split_first() else {
            return;
        };
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(&self.config.main_cwd)
            .process_group(0);
        take_terminal_in_child(&mut command);
        restore_inherited_in_child(&mut command);
        let spawned = self.reaper.spawn_main(&mut command);
        // The main command has its copies now; ours would only keep its
        // pipes and sockets open after it closed them.
        close_inherited_fds();
        match spawned {
            Ok((child, exit)) => {
                let pid = child.id() as i32;
                main.pid = Some(pid);
                main.state = MainState::Running;
                let events = self.event_sender.clone();
                tokio::spawn(async move {
                    if let Ok(exit) = exit.await {
                        let _ = events.send(Event::MainExited(exit));
                    }
                });
            }
            Err(error) => {
                let code = match error.kind() {
                    std::io::ErrorKind::NotFound => 127,
                    _ => 126,
                };
                tracing::error!(
                    "cannot execute main command {}: {error}",
                    program.to_string_lossy()
                );
                main.state = MainState::FailedToStart;
                main.exit_code = Some(code);
                self.pending
                    .intents
                    .shutdown
                    .get_or_insert(ShutdownCause::MainExited);
            }
        }
    }

    pub(super) fn on_main_exit(&mut self, exit: ChildExit) {
        if let Some(main) = &mut self.main {
            main.state = MainState::Exited;
            main.exit_code = Some(exit.code());
        }
        tracing::info!("main command {exit}");
        self.publish();
        if !self.pending.intents.shutting_down(self.phase) {
            self.pending.intents.shutdown = Some(ShutdownCause::MainExited);
        }
    }
}
