//! The `dind-init snapshot` command line and the engine it names.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::time::Duration;

use crate::args::{UsageError, flag_value, parse_seconds, split_flag};

/// Seconds the quiesce and the resume may each take, unless `--timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

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
        let path = path?;
        Engine::ALL.into_iter().find(|engine| {
            std::env::split_paths(path).any(|dir| is_executable(&dir.join(engine.program())))
        })
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
    let mut after = After::Resume;
    let mut timeout = DEFAULT_TIMEOUT;
    while let Some(arg) = args.next() {
        let text = arg
            .to_str()
            .ok_or_else(|| UsageError("snapshot: an argument is not valid UTF-8".to_string()))?
            .to_string();
        let (flag, inline) = split_flag(&text);
        match flag {
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
            "--resume" => after = After::Resume,
            "--rm" => after = After::Remove,
            "-h" | "--help" => {
                return Err(UsageError(
                    "usage: dind-init snapshot [--engine docker|podman] [--timeout S] [--resume|--rm] CONTAINER IMAGE"
                        .to_string(),
                ));
            }
            _ if text.starts_with('-') => {
                return Err(UsageError(format!(
                    "`dind-init snapshot` does not take `{text}`"
                )));
            }
            _ => positional.push(text),
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
        after,
        timeout,
    })
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
            parse_words(&["--rm", "--resume", "c", "i"]).unwrap().after,
            After::Resume
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
            "`dind-init snapshot` does not take `--pause`"
        );
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
