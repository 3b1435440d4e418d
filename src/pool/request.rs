//! The `dind-init pool` command line: its five actions (and the hidden
//! `refill` that `take` starts in the background), each checked here so
//! that a bad size or pool name is one line before the engine is asked.

use std::ffi::OsString;
use std::time::Duration;

use crate::cli::{UsageError, flag_value, parse_seconds, split_flag};
use crate::snapshot::Engine;

/// The most members one `fill` may ask for: each is a whole L2 environment
/// (its own inner engine and services), so more is almost certainly a typo.
pub const MAX_SIZE: u32 = 64;
/// How long `take` waits for a ready member, unless `--timeout`.
pub const DEFAULT_TAKE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long `fill --wait` and a background refill wait for members to get
/// ready, unless `--timeout`.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(600);

const USAGE: &str = "usage: dind-init pool [--engine docker|podman] \
fill IMAGE --size N [--name POOL] [--wait] [--timeout S] [-- RUN-ARGS...] | \
take POOL [--timeout S] [--json] | release NAME | ls POOL [--json] | drain POOL [--all]";

/// A parsed `dind-init pool` command line.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolRequest {
    /// `None`: the first of docker, podman found on PATH.
    pub engine: Option<Engine>,
    pub action: Action,
}

/// What `dind-init pool` is asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start members of `image` until the pool holds `size` that are ready
    /// or getting ready; with `wait`, return once all are ready.
    Fill {
        image: String,
        size: u32,
        /// `None`: named after the image.
        pool: Option<String>,
        wait: bool,
        timeout: Duration,
        /// Passed to `ENGINE run` for every member (ports, env, run flags).
        run_args: Vec<String>,
    },
    /// Claim one ready member, start a replacement in the background.
    Take {
        pool: String,
        timeout: Duration,
        json: bool,
    },
    /// Remove a member (taken or not) with its anonymous volumes.
    Release { name: String },
    /// Each member, its state and age.
    List { pool: String, json: bool },
    /// Remove the waiting members; with `all`, the taken ones too.
    Drain { pool: String, all: bool },
    /// The background part of `take` and of tending: start `count` members
    /// from `template` (a member's labels, as a JSON object) and see them ready.
    Refill {
        pool: String,
        count: u32,
        template: String,
        timeout: Duration,
    },
}

/// Parses the arguments after `pool`.
pub fn parse(args: &mut impl Iterator<Item = OsString>) -> Result<PoolRequest, UsageError> {
    let mut engine = None;
    let mut action = None;
    let mut positional = Vec::new();
    let mut size = None;
    let mut pool = None;
    let mut wait = false;
    let mut json = false;
    let mut all = false;
    let mut timeout = None;
    let mut count = 1;
    let mut template = None;
    let mut run_args = Vec::new();
    while let Some(arg) = args.next() {
        let text = arg
            .to_str()
            .ok_or_else(|| UsageError("pool: an argument is not valid UTF-8".to_string()))?
            .to_string();
        let (flag, inline) = split_flag(&text);
        let value = |args: &mut _| text_value(flag, inline.clone(), args);
        match flag {
            "--" => {
                for arg in args.by_ref() {
                    run_args.push(arg.into_string().map_err(|_| {
                        UsageError("pool: a RUN-ARG is not valid UTF-8".to_string())
                    })?);
                }
            }
            "--engine" => {
                engine = Some(
                    value(args)?
                        .parse()
                        .map_err(|why| UsageError(format!("--engine: {why}")))?,
                );
            }
            "--size" => {
                let given = value(args)?;
                size = Some(parse_size(&given).map_err(UsageError)?);
            }
            "--name" => pool = Some(value(args)?),
            "--timeout" => {
                timeout = Some(
                    parse_seconds(&value(args)?)
                        .map_err(|why| UsageError(format!("--timeout: {why}")))?,
                );
            }
            "--count" => {
                count = parse_size(&value(args)?).map_err(UsageError)?;
            }
            "--template" => template = Some(value(args)?),
            "--wait" => wait = true,
            "--json" => json = true,
            "--all" => all = true,
            "-h" | "--help" => return Err(UsageError(USAGE.to_string())),
            _ if text.starts_with('-') => {
                return Err(UsageError(format!(
                    "`dind-init pool` does not take `{text}` (RUN-ARGS go after `--`)"
                )));
            }
            _ if action.is_none() => action = Some(text),
            _ => positional.push(text),
        }
    }
    let Some(action) = action else {
        return Err(UsageError(USAGE.to_string()));
    };
    let one = |what: &str| -> Result<String, UsageError> {
        match <[String; 1]>::try_from(positional.clone()) {
            Ok([one]) => Ok(one),
            Err(given) => Err(UsageError(format!(
                "`dind-init pool {action}` takes {what}, got {} argument(s)",
                given.len()
            ))),
        }
    };
    let pool_name = |what: &str| one(what).and_then(|name| check_pool_name(&name).map(|()| name));
    let action = match action.as_str() {
        "fill" => Action::Fill {
            image: one("IMAGE")?,
            size: size.ok_or_else(|| {
                UsageError("`dind-init pool fill` needs --size N (1 to 64)".to_string())
            })?,
            pool: pool
                .map(|name| check_pool_name(&name).map(|()| name))
                .transpose()?,
            wait,
            timeout: timeout.unwrap_or(DEFAULT_READY_TIMEOUT),
            run_args,
        },
        "take" => Action::Take {
            pool: pool_name("POOL")?,
            timeout: timeout.unwrap_or(DEFAULT_TAKE_TIMEOUT),
            json,
        },
        "release" => Action::Release {
            name: one("a member's NAME")?,
        },
        "ls" => Action::List {
            pool: pool_name("POOL")?,
            json,
        },
        "drain" => Action::Drain {
            pool: pool_name("POOL")?,
            all,
        },
        "refill" => Action::Refill {
            pool: pool_name("POOL")?,
            count,
            template: template.ok_or_else(|| {
                UsageError("`dind-init pool refill` needs --template LABELS".to_string())
            })?,
            timeout: timeout.unwrap_or(DEFAULT_READY_TIMEOUT),
        },
        other => {
            return Err(UsageError(format!(
                "`dind-init pool` has no action `{other}`: fill, take, release, ls or drain"
            )));
        }
    };
    Ok(PoolRequest { engine, action })
}

fn text_value(
    flag: &str,
    inline: Option<OsString>,
    args: &mut impl Iterator<Item = OsString>,
) -> Result<String, UsageError> {
    flag_value(flag, inline, args).map(|value| value.to_string_lossy().into_owned())
}

/// A pool size or count: 1 to [`MAX_SIZE`].
fn parse_size(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(size) if (1..=MAX_SIZE).contains(&size) => Ok(size),
        Ok(0) => Err(format!(
            "--size 0: a pool holds 1 to {MAX_SIZE} containers; give --size 1 or more"
        )),
        _ => Err(format!(
            "--size {text}: a pool holds 1 to {MAX_SIZE} containers (each a whole environment); give a smaller number"
        )),
    }
}

/// Pool names become container names (`POOL-1a2b3c4d`): letters, digits
/// and `_.-`, starting with a letter or digit, at most 40 characters.
pub fn check_pool_name(name: &str) -> Result<(), UsageError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if first_ok && name.len() <= 40 && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        Ok(())
    } else {
        Err(UsageError(format!(
            "pool name `{}`: use 1 to 40 letters, digits, `_`, `.` or `-`, starting with a letter or digit",
            crate::text::escape_controls(name)
        )))
    }
}

/// The pool name `fill` uses without `--name`: the image reference with
/// every other character as `-` (`me/env:prepared` → `me-env-prepared`).
pub fn pool_name_of(image: &str) -> String {
    let name: String = image
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .skip_while(|c| !c.is_ascii_alphanumeric())
        .take(40)
        .collect();
    if name.is_empty() {
        "pool".to_string()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &[&str]) -> Result<PoolRequest, String> {
        parse(&mut words.iter().map(OsString::from)).map_err(|error| error.0)
    }

    #[test]
    fn fill_take_and_the_rest() {
        let request = parse_words(&[
            "--engine", "podman", "fill", "me/env:1", "--size=2", "--wait", "--", "-p", "5432",
            "--wait",
        ])
        .unwrap();
        assert_eq!(request.engine, Some(Engine::Podman));
        assert_eq!(
            request.action,
            Action::Fill {
                image: "me/env:1".into(),
                size: 2,
                pool: None,
                wait: true,
                timeout: DEFAULT_READY_TIMEOUT,
                run_args: vec!["-p".into(), "5432".into(), "--wait".into()],
            }
        );
        assert_eq!(
            parse_words(&["take", "p", "--timeout", "1.5", "--json"])
                .unwrap()
                .action,
            Action::Take {
                pool: "p".into(),
                timeout: Duration::from_millis(1500),
                json: true
            }
        );
        assert_eq!(
            parse_words(&["drain", "p", "--all"]).unwrap().action,
            Action::Drain {
                pool: "p".into(),
                all: true
            }
        );
        assert_eq!(
            pool_name_of("dind-init-e2e/pg:latest"),
            "dind-init-e2e-pg-latest"
        );
        assert_eq!(pool_name_of("/x"), "x");
    }

    #[test]
    fn bad_input_is_one_line_saying_what_to_do() {
        assert_eq!(
            parse_words(&["fill", "i", "--size", "0"]).unwrap_err(),
            "--size 0: a pool holds 1 to 64 containers; give --size 1 or more"
        );
        assert!(
            parse_words(&["fill", "i", "--size", "100000"])
                .unwrap_err()
                .contains("give a smaller number")
        );
        assert_eq!(
            parse_words(&["fill", "i"]).unwrap_err(),
            "`dind-init pool fill` needs --size N (1 to 64)"
        );
        assert!(
            parse_words(&["take", "a/b"])
                .unwrap_err()
                .starts_with("pool name `a/b`: use 1 to 40 letters")
        );
        assert_eq!(
            parse_words(&["take"]).unwrap_err(),
            "`dind-init pool take` takes POOL, got 0 argument(s)"
        );
        assert!(
            parse_words(&["shrink", "p"])
                .unwrap_err()
                .contains("no action `shrink`")
        );
    }
}
