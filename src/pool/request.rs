//! The `dind-init pool` command line: its five actions (and the hidden
//! `refill` that `take` starts in the background), each checked here so
//! that a bad size or pool name is one line before the engine is asked.

use std::ffi::OsString;
use std::time::Duration;

use crate::args::{Syntax, UsageError, flag_value, parse_seconds, split_flag};
use crate::snapshot::Engine;

/// The most members one `fill` may ask for: each is a whole L2 environment
/// (its own inner engine and services), so more is almost certainly a typo.
pub const MAX_SIZE: u32 = 64;
/// How long `take` waits for a ready member, unless `--timeout`.
pub const DEFAULT_TAKE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long `fill --wait` and a background refill wait for members to get
/// ready, unless `--timeout`.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a taken member is the taker's, unless `--lease`: then the next
/// `fill`, `take`, `ls`, `gc` or `drain` removes it. Long enough for a
/// slow test suite; a job that holds one longer says so with `--lease`.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(3600);

const EXIT_CODES: &str = "Exit codes: 0 done; 1 did not happen (nothing ready in time, a pool whose members fail to boot, stdout closed); 2 bad usage; 4 bad input (no such pool, not a dind-init image, not a member); 5 the engine is missing, down, or one of its commands failed.";

fn help_of(usage: &str, what: &str, flags: &[(&str, &str)]) -> String {
    let mut text = format!(
        "Usage: dind-init pool {usage}\n   or: dind-init pool --engine docker|podman {usage}\n\n{what}\n"
    );
    if !flags.is_empty() {
        text.push_str("\nOptions:\n");
        for (flag, says) in flags {
            text.push_str(&format!("  {flag:<16} {says}\n"));
        }
    }
    text.push_str(&format!("\n{EXIT_CODES}\n"));
    text
}

const ENGINE_HELP: (&str, &str) = (
    "--engine E",
    "docker or podman (default: the first of them on PATH)",
);

/// Every verb's flags and help: the parser takes only what these say.
pub const SYNTAX: &[Syntax] = &[
    Syntax {
        words: "pool",
        flags: &["--engine"],
        help: || {
            help_of(
                "fill|take|release|ls|drain|gc ...",
                "Containers of a prepared dind-init image kept booted, so a test takes a ready environment at once. See `dind-init pool VERB --help`.",
                &[ENGINE_HELP],
            )
        },
    },
    Syntax {
        words: "pool fill",
        flags: &["--engine", "--size", "--name", "--wait", "--timeout"],
        help: || {
            help_of(
                "fill IMAGE --size N [--name POOL] [--wait] [--timeout S] [-- RUN-ARGS...]",
                "Sets the pool's size to N and starts members of IMAGE into its free slots (removing waiting ones past a smaller N); resets the replacement budget. RUN-ARGS go to `ENGINE run` of every member.",
                &[
                    ENGINE_HELP,
                    (
                        "--size N",
                        "members waiting or starting, at most; 1 to 64 (required)",
                    ),
                    (
                        "--name POOL",
                        "the pool's name (default: the image reference, `/:` as `-`)",
                    ),
                    ("--wait", "return once every member is ready"),
                    ("--timeout S", "how long --wait waits (default 600)"),
                ],
            )
        },
    },
    Syntax {
        words: "pool take",
        flags: &["--engine", "--timeout", "--lease", "--json"],
        help: || {
            help_of(
                "take POOL [--timeout S] [--lease S] [--json]",
                "Claims a ready member, prints its name, then starts its replacement. Waits for one (refills in flight included) up to the timeout. A claim older than its lease is removed by the next fill, take, ls, gc or drain.",
                &[
                    ENGINE_HELP,
                    (
                        "--timeout S",
                        "how long to wait for a ready member (default 300)",
                    ),
                    ("--lease S", "how long the member is yours (default 3600)"),
                    ("--json", "print name, id, ports and address as JSON"),
                ],
            )
        },
    },
    Syntax {
        words: "pool release",
        flags: &["--engine"],
        help: || {
            help_of(
                "release NAME",
                "Removes a member (taken or not) with its anonymous volumes.",
                &[ENGINE_HELP],
            )
        },
    },
    Syntax {
        words: "pool ls",
        flags: &["--engine", "--json"],
        help: || {
            help_of(
                "ls POOL [--json]",
                "The pool's size, how many wait, start and are taken, then each member with its state, age and lease. Reclaims stale claims first.",
                &[ENGINE_HELP, ("--json", "the same as one JSON object")],
            )
        },
    },
    Syntax {
        words: "pool drain",
        flags: &["--engine", "--all"],
        help: || {
            help_of(
                "drain POOL [--all]",
                "Removes the pool: its record, the waiting and failed members and stale claims, and what refills in flight start meanwhile. Claims in their lease stay unless --all.",
                &[ENGINE_HELP, ("--all", "remove the taken members too")],
            )
        },
    },
    Syntax {
        words: "pool gc",
        flags: &["--engine"],
        help: || {
            help_of(
                "gc POOL",
                "Removes what nobody holds: claims past their lease and left-over claim volumes. Never a member in use.",
                &[ENGINE_HELP],
            )
        },
    },
];

/// The hidden `pool refill`: not for users, so not in any help.
const REFILL_SYNTAX: Syntax = Syntax {
    words: "pool refill",
    flags: &["--engine", "--timeout"],
    help: String::new,
};

fn syntax_of(verb: Option<&str>) -> &'static Syntax {
    let words = verb.map_or("pool".to_string(), |verb| format!("pool {verb}"));
    if words == REFILL_SYNTAX.words {
        return &REFILL_SYNTAX;
    }
    SYNTAX
        .iter()
        .find(|syntax| syntax.words == words)
        .or_else(|| SYNTAX.first())
        .unwrap_or(&REFILL_SYNTAX)
}

/// `--help` of the verb among `args` (the bare word's without one).
pub fn help_for(verb: Option<&str>) -> String {
    (syntax_of(verb).help)()
}

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
        /// How long the claim holds before anyone may reclaim it.
        lease: Duration,
        json: bool,
    },
    /// Remove a member (taken or not) with its anonymous volumes.
    Release { name: String },
    /// Each member, its state and age.
    List { pool: String, json: bool },
    /// Remove the waiting members; with `all`, the taken ones too.
    Drain { pool: String, all: bool },
    /// Remove stale claims, never a member in use.
    Gc { pool: String },
    /// The background part of `take`: fill the pool's free slots and see
    /// the new members ready.
    Refill { pool: String, timeout: Duration },
}

/// Parses the arguments after `pool`.
pub fn parse(args: &mut impl Iterator<Item = OsString>) -> Result<PoolRequest, UsageError> {
    let mut engine = None;
    let mut action: Option<String> = None;
    let mut positional = Vec::new();
    let mut size = None;
    let mut pool = None;
    let mut wait = false;
    let mut json = false;
    let mut all = false;
    let mut timeout = None;
    let mut lease = DEFAULT_LEASE;
    let mut run_args = Vec::new();
    while let Some(arg) = args.next() {
        let text = arg
            .to_str()
            .ok_or_else(|| UsageError("pool: an argument is not valid UTF-8".to_string()))?
            .to_string();
        let (flag, inline) = split_flag(&text);
        let value = |args: &mut _| text_value(flag, inline.clone(), args);
        if flag == "--" {
            for arg in args.by_ref() {
                run_args.push(
                    arg.into_string().map_err(|_| {
                        UsageError("pool: a RUN-ARG is not valid UTF-8".to_string())
                    })?,
                );
            }
            continue;
        }
        if !text.starts_with('-') {
            match action {
                None => action = Some(text),
                Some(_) => positional.push(text),
            }
            continue;
        }
        if flag == "-h" || flag == "--help" {
            return Err(UsageError(help_for(action.as_deref())));
        }
        match syntax_of(action.as_deref()).check(flag)? {
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
            "--lease" => {
                lease = parse_seconds(&value(args)?)
                    .map_err(|why| UsageError(format!("--lease: {why}")))?;
            }
            "--wait" => wait = true,
            "--json" => json = true,
            "--all" => all = true,
            other => return Err(syntax_of(action.as_deref()).unknown(other)),
        }
    }
    let Some(action) = action else {
        return Err(UsageError(help_for(None)));
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
    if !run_args.is_empty() && action != "fill" {
        return Err(UsageError(
            "only `dind-init pool fill` takes RUN-ARGS after `--`".to_string(),
        ));
    }
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
            lease,
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
        "gc" => Action::Gc {
            pool: pool_name("POOL")?,
        },
        "refill" => Action::Refill {
            pool: pool_name("POOL")?,
            timeout: timeout.unwrap_or(DEFAULT_READY_TIMEOUT),
        },
        other => {
            return Err(UsageError(format!(
                "`dind-init pool` has no action `{other}`: fill, take, release, ls, drain or gc"
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
                lease: DEFAULT_LEASE,
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
        assert_eq!(
            parse_words(&["ls", "p", "--all"]).unwrap_err(),
            "`dind-init pool ls` does not take `--all`; see `dind-init pool ls --help`"
        );
        assert_eq!(
            parse_words(&["take", "p", "--lease", "1", "--size", "2"]).unwrap_err(),
            "`dind-init pool take` does not take `--size`; see `dind-init pool take --help`"
        );
    }

    /// Each verb's flags are what its parser takes, and its help names
    /// each with its default, and the exit codes.
    #[test]
    fn every_flag_of_a_verb_is_taken_and_in_its_help() {
        let value_of = |flag: &str| match flag {
            "--engine" => Some("docker"),
            "--size" | "--timeout" | "--lease" => Some("2"),
            "--name" => Some("p"),
            _ => None,
        };
        for syntax in SYNTAX {
            let help = (syntax.help)();
            assert!(help.starts_with("Usage: dind-init pool"), "{help}");
            assert!(help.contains("Exit codes: 0"), "{help}");
            let verb = syntax.words.strip_prefix("pool ");
            let mut words: Vec<&str> = verb.into_iter().collect();
            words.push("p");
            let answered = parse_words(&[&words[..], &["--help"]].concat()).unwrap_err();
            assert_eq!(answered, help, "{}", syntax.words);
            for flag in syntax.flags {
                assert!(help.contains(flag), "{} help lacks {flag}", syntax.words);
                let mut args = words.clone();
                args.push(flag);
                args.extend(value_of(flag));
                if let Err(why) = parse_words(&args) {
                    assert!(!why.contains("does not take"), "{args:?}: {why}");
                }
            }
        }
    }

    #[test]
    fn take_lease_and_gc() {
        assert_eq!(
            parse_words(&["take", "p", "--lease=90"]).unwrap().action,
            Action::Take {
                pool: "p".into(),
                timeout: DEFAULT_TAKE_TIMEOUT,
                lease: Duration::from_secs(90),
                json: false
            }
        );
        assert_eq!(
            parse_words(&["gc", "p"]).unwrap().action,
            Action::Gc { pool: "p".into() }
        );
        assert!(
            parse_words(&["take", "p", "--", "-x"])
                .unwrap_err()
                .contains("only `dind-init pool fill` takes RUN-ARGS")
        );
    }
}
