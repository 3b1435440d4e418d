//! The one place external tools (mount, e2fsck, e2image, resize2fs, mkfs,
//! dumpe2fs, fuse-overlayfs) run: every exit status is checked, and a
//! failure is one line with the command, how it ended and the tool's last
//! words, which the stop's result carries.

use std::ffi::OsStr;
use std::process::{Command, Output};

/// Runs `program args`, which must exit with a status in `accepted`
/// (0 for most tools; e2fsck's 0-1 mean clean or fixed). `what` says what
/// the step was for, ahead of the command in a failure.
pub fn run_accepting<S: AsRef<OsStr>>(
    what: &str,
    program: &str,
    args: &[S],
    accepted: &[i32],
) -> Result<Output, String> {
    let words = std::iter::once(program.to_string())
        .chain(
            args.iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned()),
        )
        .collect::<Vec<_>>()
        .join(" ");
    let output = Command::new(program).args(args).output().map_err(|error| {
        format!("{what}: cannot run `{words}`: {error} (is {program} installed?)")
    })?;
    match output.status.code() {
        Some(code) if accepted.contains(&code) => Ok(output),
        code => Err(failure_line(what, &words, code, &output)),
    }
}

/// Runs `program args`, which must exit 0.
pub fn run<S: AsRef<OsStr>>(what: &str, program: &str, args: &[S]) -> Result<Output, String> {
    run_accepting(what, program, args, &[0])
}

fn failure_line(what: &str, words: &str, code: Option<i32>, output: &Output) -> String {
    let ended = match code {
        Some(code) => format!("exited with {code}"),
        None => "was killed by a signal".to_string(),
    };
    let said = last_line(&output.stderr)
        .or_else(|| last_line(&output.stdout))
        .map(|line| format!(": {line}"))
        .unwrap_or_default();
    format!("{what}: `{words}` {ended}{said}")
}

fn last_line(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(|line| crate::text::cut(&crate::text::escape_controls(line), 300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_is_one_line_with_the_command_and_its_words() {
        let error = run(
            "saving",
            "sh",
            &["-c", "echo first >&2; echo 'no space left' >&2; exit 4"],
        )
        .unwrap_err();
        assert_eq!(
            error,
            "saving: `sh -c echo first >&2; echo 'no space left' >&2; exit 4` exited with 4: no space left"
        );
        assert!(run_accepting("fsck", "sh", &["-c", "exit 1"], &[0, 1]).is_ok());
        let error = run("x", "sh", &["-c", "kill -9 $$"]).unwrap_err();
        assert!(error.ends_with("was killed by a signal"), "{error}");
        let error = run::<&str>("x", "/nonexistent/tool", &[]).unwrap_err();
        assert!(error.contains("cannot run `/nonexistent/tool`"), "{error}");
    }
}
