//! `dind-init storage start|stop|status`: where the inner engine of a DinD
//! L2 keeps its data, so that `docker commit` stores it and a restore finds
//! it (init.d-examples/dind/30-docker-storage.sh calls it; docs/dind.md
//! "Storage modes" is the user's side).
//!
//! The decisions are pure and table-tested, one concern per file:
//! [`mountinfo`] and [`placement`] (is a path committed, on a volume, or on
//! our own loop mount), [`record`] (the mode and data root chosen at setup,
//! and refusing a restore without its data), [`journal`] (which complete
//! state a start finds after a save was interrupted), [`ownership`] (whose
//! live file this is). The effects are at the edges: [`files`] (durable
//! writes), [`tool`] (every external tool, its status checked), [`ext4`],
//! [`fault`] (the tests' crash points), [`save`] (the save under the
//! journal and its recovery) and [`run`] (start and stop).

pub mod ext4;
pub mod fault;
pub mod files;
pub mod journal;
pub mod mountinfo;
pub mod ownership;
pub mod placement;
pub mod record;
pub mod run;
pub mod save;
pub mod tool;

use std::ffi::OsString;

/// The usage line of `dind-init storage`.
pub const USAGE: &str = "\
Usage: dind-init storage start|stop|status

Run by the DinD step 30-docker-storage.sh (DIND_STORAGE picks the mode at the
first boot: auto, fuse-overlayfs, vfs or loop; see docs/dind.md). start
restores the inner engine's data and writes /run/dind-storage.env; stop saves
it and fails when the container is not safe to docker commit; status prints
the record, the journal and the live file's owner.
";

/// What `dind-init storage` was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Status,
    /// Hidden: the fault points, for the tests.
    FaultPoints,
    Help,
}

/// Parses the words after `storage`.
pub fn parse(args: &[OsString]) -> Result<Action, String> {
    let words: Vec<_> = args.iter().map(|a| a.to_string_lossy()).collect();
    match words
        .iter()
        .map(|w| w.as_ref())
        .collect::<Vec<&str>>()
        .as_slice()
    {
        ["start"] => Ok(Action::Start),
        ["stop"] => Ok(Action::Stop),
        ["status"] => Ok(Action::Status),
        ["fault-points"] => Ok(Action::FaultPoints),
        ["-h" | "--help" | "help"] => Ok(Action::Help),
        [] => Err("`dind-init storage` needs start, stop or status".to_string()),
        other => Err(format!(
            "`dind-init storage {}` is not a storage command: use start, stop or status",
            crate::text::cut(&crate::text::escape_controls(&other.join(" ")), 80)
        )),
    }
}

/// `dind-init storage ARGS` (the words after `storage`): its exit status.
/// 0 done, 1 refused or failed (one line on stderr), 2 usage, 86 a fault point.
pub fn main(args: &[OsString]) -> i32 {
    let action = match parse(args) {
        Ok(action) => action,
        Err(error) => {
            eprintln!("dind-init storage: {error}\n{USAGE}");
            return 2;
        }
    };
    let result = match action {
        Action::Help => {
            print!("{USAGE}");
            Ok(())
        }
        Action::FaultPoints => {
            for point in fault::FAULT_POINTS {
                println!("{point}");
            }
            Ok(())
        }
        Action::Start => run::start(&run::Paths::default()),
        Action::Stop => run::stop(&run::Paths::default()),
        Action::Status => run::status(&run::Paths::default()),
    };
    match result {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("dind-init storage: {error}");
            1
        }
    }
}

/// `Some(exit status)` when `args` (the program's, without its name) ask for
/// `storage`: the one line `main` needs to hand it over.
pub fn dispatch(args: &[OsString]) -> Option<i32> {
    let (first, rest) = args.split_first()?;
    (first == "storage").then(|| main(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn storage_commands_parse_and_others_are_refused() {
        assert_eq!(parse(&words(&["start"])), Ok(Action::Start));
        assert_eq!(parse(&words(&["stop"])), Ok(Action::Stop));
        assert_eq!(parse(&words(&["status"])), Ok(Action::Status));
        assert_eq!(parse(&words(&["fault-points"])), Ok(Action::FaultPoints));
        assert_eq!(parse(&words(&["--help"])), Ok(Action::Help));
        assert!(parse(&words(&[])).unwrap_err().contains("needs start"));
        assert!(
            parse(&words(&["start", "now"]))
                .unwrap_err()
                .contains("`dind-init storage start now`")
        );
        assert!(dispatch(&words(&["status"])).is_none());
    }
}
