//! Entry point: one binary, two roles. With a subcommand (`status`,
//! `quiesce`, `resume`, `logs`; `snapshot` on the host) it is a client of a
//! running dind-init; otherwise it is the init itself.

use std::process::ExitCode;

use nix::sys::signal::{SigmaskHow, pthread_sigmask};

use dind_init::cli::{self, Parsed};
use dind_init::{client, init, sys};

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    if let Some(code) = dind_init::storage::dispatch(&args) {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    // What the container gave us, for the main command, before we change it.
    sys::save_inherited();
    // Before anything else, so a signal that arrives during start-up waits
    // in the queue for the signalfd instead of being lost.
    let signal_mask = match sys::block_handled_signals() {
        Ok(mask) => mask,
        Err(error) => {
            eprintln!("dind-init: error: cannot block signals: {error}");
            return ExitCode::from(init::EXIT_CONFIG_ERROR as u8);
        }
    };
    let cli = match cli::parse(std::env::args_os().skip(1), |name| std::env::var_os(name)) {
        Ok(Parsed::Run(cli)) => cli,
        Ok(Parsed::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version(line)) => {
            println!("{line}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("dind-init: error: {error}");
            return ExitCode::from(init::EXIT_CONFIG_ERROR as u8);
        }
    };
    let code = match cli.command {
        Some(command) => {
            // A client must die of Ctrl-C like any command.
            let _ = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&signal_mask), None);
            client::run(&cli.config.socket, command)
        }
        None => init::run(cli.config, signal_mask),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
