//! The `dind-init snapshot` command line and the engine it names.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::time::Duration;

use crate::args::{Syntax, UsageError, flag_value, parse_seconds, split_flag};

/// Seconds the quiesce and the resume may each take, unless `--timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// What `dind-init snapshot` accepts; its parser checks every flag here.
pub const SYNTAX: &[Syntax] = &[Syntax {
    words: "snapshot",
    flags: &["--engine", "--timeout", "--resume", "--rm"],
    help,
}];

/// The text of `dind-init snapshot --help`.
fn help() -> String {
    format!(
        "Usage: dind-init snapshot [--engine docker|podman] [--timeout S] [--resume|--rm] CONTAINER IMAGE

On the host: quiesces the running CONTAINER (a dind-init inside it), commits it
to IMAGE only when dind-init says it is safe, then resumes it (or removes it).

Options:
  --engine docker|podman   the engine's CLI to run [the first of docker, podman on PATH]
  --timeout S              seconds the quiesce, and the resume, may each take [{timeout}]
  --resume                 after the commit, run the container's starts again [the default]
  --rm                     after the commit, remove the container (not with --resume)

Exit codes: 0 committed (and resumed or removed); not committed: 1 not
commit-safe (resumed), 2 usage error, 3 no dind-init answers in CONTAINER, 4 no
such running container, 5 no engine or an engine command failed; 6 committed,
but the resume or removal failed.
",
        timeout = DEFAULT_TIMEOUT.as_secs()
    )
}

/// The container engine whose CLI runs the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Docker,
    Podman,
}

impl Engine {
    /// In the order the default is looked for on PATH.
    const ALL: [Engine; 2] = [Engine::Docker, Engine::Podman];

    pub fn program(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
        }
    }

    /// The first engine whose program is an executable file in one of
    /// `path`'s directories (docker before podman).
    pub fn find_on_path(path: Option<&OsStr>) -> Option<Engine> {
        Engine::ALL
            .into_iter()
            .find(|engine| engine.is_on_path(path))
    }

    /// Whether its program is an executable file in one of `path`'s directories.
    pub fn is_on_path(self, path: Option<&OsStr>) -> bool {
        path.is_some_and(|path| {
            std::env::split_paths(path).any(|dir| is_executable(&dir.join(self.program())))
        })
    }

    /// Where to read how to install it.
    pub fn install_hint(self) -> &'static str {
        match self {
            Engine::Docker => "https://docs.docker.com/engine/install/",
            Engine::Podman => {
                "`apt-get install podman`, `dnf install podman`, or https://podman.io/docs/installation"
            }
        }
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

impl std::str::FromStr for Engine {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Engine::ALL
            .into_iter()
            .find(|engine| engine.program() == text)
            .ok_or_else(|| format!("`{text}` is not `docker` or `podman`"))
    }
}

/// What happens to the container after a successful commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// `dind-init resume`: the container runs its starts again and goes on.
    Resume,
    /// `ENGINE rm -f`: the committed image is all that is kept.
    Remove,
}

/// A parsed `dind-init snapshot` command line.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotRequest {
    /// Name or id of the running container, as the engine knows it.
    pub container: String,
    /// The image reference to commit to (`repo[:tag]`).
    pub image: String,
    /// `None`: the first of docker, podman found on PATH.
    pub engine: Option<Engine>,
    pub after: After,
    /// How long the quiesce, and the resume, may each take.
    pub timeout: Duration,
}

/// Parses the arguments after `snapshot`.
pub fn parse(args: &mut impl Iterator<Item = OsString>) -> Result<SnapshotRequest, UsageError> {
    let mut positional = Vec::new();
    let mut engine = None;
    let mut after = None;
    let mut timeout = DEFAULT_TIMEOUT;
    let [syntax] = SYNTAX else {
        return Err(UsageError("snapshot: no syntax table".to_string()));
    };
    while let Some(arg) = args.next() {
        let text = arg
            .to_str()
            .ok_or_else(|| UsageError("snapshot: an argument is not valid UTF-8".to_string()))?
            .to_string();
        if !text.starts_with('-') {
            positional.push(text);
            continue;
        }
        let (flag, inline) = split_flag(&text);
        match syntax.check(flag)? {
            "--engine" => {
                let value = flag_value(flag, inline, args)?;
                let value = value.to_string_lossy();
                engine = Some(
                    value
                        .parse()
                        .map_err(|why| UsageError(format!("--engine: {why}")))?,
                );
            }
            "--timeout" => {
                let value = flag_value(flag, inline, args)?;
                timeout = parse_seconds(&value.to_string_lossy())
                    .map_err(|why| UsageError(format!("--timeout: {why}")))?;
            }
            "--resume" => after = Some(chosen(after, After::Resume)?),
            "--rm" => after = Some(chosen(after, After::Remove)?),
            _ => return Err(syntax.unknown(&text)),
        }
    }
    let [container, image] = <[String; 2]>::try_from(positional).map_err(|given| {
        UsageError(format!(
            "`dind-init snapshot` takes CONTAINER IMAGE, got {} argument(s)",
            given.len()
        ))
    })?;
    Ok(SnapshotRequest {
        container,
        image,
        engine,
        after: after.unwrap_or(After::Resume),
        timeout,
    })
}

/// `--resume` and `--rm` ask for opposite ends: given both, neither is guessed.
fn chosen(before: Option<After>, now: After) -> Result<After, UsageError> {
    match before {
        Some(before) if before != now => Err(UsageError(
            "`dind-init snapshot` takes `--resume` (keep the container running) or `--rm` (remove it), not both"
                .to_string(),
        )),
        _ => Ok(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &[&str]) -> Result<SnapshotRequest, String> {
        parse(&mut words.iter().map(OsString::from)).map_err(|error| error.0)
    }

    #[test]
    fn defaults_and_flags() {
        let request = parse_words(&["env", "me/env:prepared"]).unwrap();
        assert_eq!(
            request,
            SnapshotRequest {
                container: "env".into(),
                image: "me/env:prepared".into(),
                engine: None,
                after: After::Resume,
                timeout: DEFAULT_TIMEOUT,
            }
        );
        let request =
            parse_words(&["--engine=podman", "--rm", "c", "i", "--timeout", "1.5"]).unwrap();
        assert_eq!(request.engine, Some(Engine::Podman));
        assert_eq!(request.after, After::Remove);
        assert_eq!(request.timeout, Duration::from_millis(1500));
        assert_eq!(
            parse_words(&["--rm", "--rm", "c", "i"]).unwrap().after,
            After::Remove
        );
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        assert_eq!(
            parse_words(&["c"]).unwrap_err(),
            "`dind-init snapshot` takes CONTAINER IMAGE, got 1 argument(s)"
        );
        assert_eq!(
            parse_words(&["--engine", "lxc", "c", "i"]).unwrap_err(),
            "--engine: `lxc` is not `docker` or `podman`"
        );
        assert_eq!(
            parse_words(&["c", "i", "--timeout"]).unwrap_err(),
            "`--timeout` needs a value"
        );
        assert_eq!(
            parse_words(&["--pause", "c", "i"]).unwrap_err(),
            "`dind-init snapshot` does not take `--pause`; see `dind-init snapshot --help`"
        );
        for both in [["--resume", "--rm"], ["--rm", "--resume"]] {
            let error = parse_words(&[both[0], "c", "i", both[1]]).unwrap_err();
            assert!(error.contains("not both"), "{error}");
        }
    }

    #[test]
    fn the_engine_is_found_on_path_docker_first() {
        let dir = std::env::temp_dir().join(format!("dind-init-engine-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = OsString::from(format!("/nonexistent:{}", dir.display()));
        assert_eq!(Engine::find_on_path(Some(&path)), None);
        let podman = dir.join("podman");
        std::fs::write(&podman, "").unwrap();
        assert_eq!(Engine::find_on_path(Some(&path)), None, "not executable");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&podman, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(Engine::find_on_path(Some(&path)), Some(Engine::Podman));
        std::fs::copy(&podman, dir.join("docker")).unwrap();
        assert_eq!(Engine::find_on_path(Some(&path)), Some(Engine::Docker));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
