//! The save journal, `/var/lib/dind-storage/journal`: one word saying how far
//! the save of `docker.img.new` over `docker.img` got, so that a start after
//! an interruption at any step knows which complete state it has and says
//! which. The journal is written before the step it announces and removed
//! once the new copy's name is durable.

/// How far a save got; absent journal: no save in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `docker.img.new` is being written: not complete.
    Copying,
    /// `docker.img.new` is complete and fsynced; it is being renamed over
    /// `docker.img` (it may already be).
    Copied,
}

impl Step {
    /// The journal's text.
    pub fn word(self) -> &'static str {
        match self {
            Step::Copying => "copying",
            Step::Copied => "copied",
        }
    }

    /// Reads the journal's text; anything else is an error naming it.
    pub fn parse(text: &str) -> Result<Step, String> {
        match text.trim() {
            "copying" => Ok(Step::Copying),
            "copied" => Ok(Step::Copied),
            other => Err(format!(
                "the save journal /var/lib/dind-storage/journal holds '{}', not copying or copied: it was not written by this dind-init; remove it if you know which copy is complete",
                crate::text::cut(&crate::text::escape_controls(other), 40)
            )),
        }
    }
}

/// What a start does with what an interrupted save left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Nothing to recover.
    Clean,
    /// A partial new copy: remove it; the previous saved copy is the complete state.
    DiscardNew,
    /// A complete new copy not yet renamed: rename it into place.
    FinishRename,
    /// The rename happened; only the journal is left: remove it.
    DropJournal,
}

/// The recovery for `journal` (None: no journal) given whether
/// `docker.img.new` exists.
pub fn recover(journal: Option<Step>, new_exists: bool) -> Recovery {
    match (journal, new_exists) {
        (None, false) => Recovery::Clean,
        // A leftover of a start's copy or an older script: never complete.
        (None, true) | (Some(Step::Copying), _) => Recovery::DiscardNew,
        (Some(Step::Copied), true) => Recovery::FinishRename,
        (Some(Step::Copied), false) => Recovery::DropJournal,
    }
}

/// The line a start logs about the recovery, `None` for a clean state.
pub fn recovery_line(recovery: Recovery, saved_exists: bool) -> Option<String> {
    let previous = if saved_exists {
        "the previous complete state, /var/lib/dind-storage/docker.img"
    } else {
        "no saved copy (this is the first save)"
    };
    match recovery {
        Recovery::Clean => None,
        Recovery::DiscardNew => Some(format!(
            "journal: a save was interrupted while copying; its partial copy is removed and the saved state is {previous}"
        )),
        Recovery::FinishRename | Recovery::DropJournal => Some(
            "journal: a save was interrupted after its copy was complete; the saved state is the new complete state, /var/lib/dind-storage/docker.img".to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_interruption_point_recovers_to_a_complete_state() {
        // (journal, new copy on disk) after a crash at each step of a save,
        // in the order the stop takes them.
        let table = [
            // before the journal is written
            (None, false, Recovery::Clean),
            // journal `copying` written, nothing copied yet
            (Some(Step::Copying), false, Recovery::DiscardNew),
            // during and after the copy, fsck, shrink, truncate and fsync
            (Some(Step::Copying), true, Recovery::DiscardNew),
            // journal `copied` written
            (Some(Step::Copied), true, Recovery::FinishRename),
            // renamed, the directory fsynced or not
            (Some(Step::Copied), false, Recovery::DropJournal),
            // a `.new` of an interrupted start or an older script
            (None, true, Recovery::DiscardNew),
        ];
        for (journal, new_exists, expected) in table {
            assert_eq!(
                recover(journal, new_exists),
                expected,
                "{journal:?} {new_exists}"
            );
        }
    }

    #[test]
    fn the_start_says_which_state_it_found() {
        let line = recovery_line(Recovery::DiscardNew, true).unwrap();
        assert!(line.contains("previous complete state"), "{line}");
        let line = recovery_line(Recovery::FinishRename, true).unwrap();
        assert!(line.contains("new complete state"), "{line}");
        assert_eq!(recovery_line(Recovery::Clean, true), None);
    }

    #[test]
    fn the_journal_round_trips_and_rejects_other_text() {
        for step in [Step::Copying, Step::Copied] {
            assert_eq!(Step::parse(&format!("{}\n", step.word())), Ok(step));
        }
        assert!(Step::parse("renamed\x1b").unwrap_err().contains("\\x1b"));
    }
}
