use super::*;
use crate::config::{DaemonExitPolicy, StartFailurePolicy};
use crate::phase::Phase;
use std::time::Duration;
use subcommand::DEFAULT_CLIENT_TIMEOUT;

fn parse_with(args: &[&str], env: &[(&str, &str)]) -> Result<Parsed, UsageError> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    parse(args.iter().map(OsString::from), |name| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| OsString::from(v))
    })
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Cli {
    match parse_with(args, env) {
        Ok(Parsed::Run(cli)) => *cli,
        other => panic!("not a run: {other:?}"),
    }
}

#[test]
fn zero_timeout_means_no_limit() {
    assert_eq!(parse_timeout("0"), Ok(None));
    assert_eq!(parse_timeout("2"), Ok(Some(Duration::from_secs(2))));
    let cli = run(&["--start-timeout", "0"], &[]);
    assert_eq!(cli.config.start_timeout, None);
    assert_eq!(cli.config.stop_timeout, Config::default().stop_timeout);
}

#[test]
fn huge_values_are_a_usage_error_not_a_panic() {
    for huge in ["1e20", "1e19", "31536001", "18446744073709551616"] {
        let error = parse_with(&["--grace", huge], &[]).unwrap_err().0;
        assert!(error.contains("more than a year"), "{huge}: {error}");
        let error = parse_with(&[], &[("DIND_INIT_SETTLE", huge)])
            .unwrap_err()
            .0;
        assert!(error.starts_with("DIND_INIT_SETTLE: "), "{error}");
        let error = parse_with(&["status", "--timeout", huge], &[])
            .unwrap_err()
            .0;
        assert!(error.starts_with("--timeout: "), "{error}");
    }
    assert_eq!(
        parse_seconds("31536000"),
        Ok(Duration::from_secs(MAX_SECONDS))
    );
}

#[test]
fn role_signals_by_name_number_or_none() {
    assert_eq!(parse_role_signal("USR1"), Ok(Some(libc::SIGUSR1)));
    assert_eq!(parse_role_signal("sighup"), Ok(Some(libc::SIGHUP)));
    assert_eq!(parse_role_signal("12"), Ok(Some(12)));
    assert_eq!(parse_role_signal("none"), Ok(None));
    assert_eq!(parse_role_signal("RTMIN+2"), Ok(Some(libc::SIGRTMIN() + 2)));
    for refused in [
        "KILL", "STOP", "CHLD", "SEGV", "0", "65", "bogus", "RTMIN+x",
    ] {
        assert!(parse_role_signal(refused).is_err(), "{refused}");
    }
    let cli = run(
        &["--quiesce-signal", "HUP"],
        &[("DIND_INIT_RESUME_SIGNAL", "none")],
    );
    assert_eq!(
        cli.config.signals,
        SignalRoles {
            quiesce: Some(libc::SIGHUP),
            resume: None
        }
    );
    let error = parse_with(&["--resume-signal", "USR1"], &[]).unwrap_err().0;
    assert!(error.contains("both SIGUSR1"), "{error}");
}

#[test]
fn json_flag_takes_true_or_false() {
    let json_of = |args: &[&str]| match run(args, &[]).command {
        Some(Command::Status { json, .. }) => json,
        other => panic!("not status: {other:?}"),
    };
    assert!(json_of(&["status", "--json"]));
    assert!(json_of(&["status", "--json=true"]));
    assert!(!json_of(&["status", "--json=false"]));
    assert!(!json_of(&["status"]));
    assert!(parse_with(&["status", "--json=yes"], &[]).is_err());
}

#[test]
fn subcommand_help_is_help_not_an_error() {
    for name in ["status", "quiesce", "resume", "logs"] {
        match parse_with(&[name, "--help"], &[]) {
            Ok(Parsed::Help(text)) => {
                assert!(
                    text.starts_with(&format!("Usage: dind-init {name}")),
                    "{text}"
                )
            }
            other => panic!("{name} --help: {other:?}"),
        }
    }
}

#[test]
fn defaults_without_arguments_or_environment() {
    let cli = run(&[], &[]);
    assert_eq!(cli.config, Config::default());
    assert!(cli.command.is_none() && cli.config.main_command.is_empty());
}

#[test]
fn main_command_after_double_dash_and_tini_style() {
    let cli = run(&["--grace", "1", "--", "sleep", "-x"], &[]);
    assert_eq!(cli.config.main_command, ["sleep", "-x"]);
    assert_eq!(cli.config.grace, Duration::from_secs(1));
    let cli = run(&["sh", "-c", "exit 3"], &[]);
    assert_eq!(cli.config.main_command, ["sh", "-c", "exit 3"]);
    assert!(cli.command.is_none());
    let cli = run(&["--", "status", "--json"], &[]);
    assert_eq!(cli.config.main_command, ["status", "--json"]);
    assert!(cli.command.is_none());
}

#[test]
fn flags_win_over_environment_and_both_forms_work() {
    let env = [
        ("DIND_INIT_GRACE", "7"),
        ("DIND_INIT_DIR", "/"),
        ("DIND_INIT_ON_START_FAILURE", "continue"),
    ];
    let cli = run(&["--grace=2", "--settle", "0.5"], &env);
    assert_eq!(cli.config.grace, Duration::from_secs(2));
    assert_eq!(cli.config.settle, Duration::from_millis(500));
    assert_eq!(cli.config.init_dir, PathBuf::from("/"));
    assert!(cli.config.init_dir_explicit);
    assert_eq!(cli.config.on_start_failure, StartFailurePolicy::Continue);
    let cli = run(
        &["--on-daemon-exit=restart"],
        &[("DIND_INIT_ON_DAEMON_EXIT", "shutdown")],
    );
    assert_eq!(cli.config.on_daemon_exit, DaemonExitPolicy::Restart);
    let cli = run(&[], &[("DIND_INIT_ON_DAEMON_EXIT", "shutdown")]);
    assert_eq!(cli.config.on_daemon_exit, DaemonExitPolicy::Shutdown);
    assert_eq!(
        parse_with(&["--on-daemon-exit", "ignore"], &[])
            .unwrap_err()
            .0,
        "--on-daemon-exit: `ignore` is not `degrade`, `restart` or `shutdown`"
    );
}

#[test]
fn client_subcommands_parse() {
    let cli = run(
        &["status", "--wait", "quiesced", "--json", "--timeout", "2"],
        &[],
    );
    assert_eq!(
        cli.command,
        Some(Command::Status {
            json: true,
            wait: Some(Phase::Quiesced),
            timeout: Duration::from_secs(2)
        })
    );
    let cli = run(
        &["--socket", "/tmp/s", "quiesce"],
        &[("DIND_INIT_SOCKET", "/env")],
    );
    assert_eq!(cli.config.socket, PathBuf::from("/tmp/s"));
    assert_eq!(
        cli.command,
        Some(Command::Quiesce {
            timeout: DEFAULT_CLIENT_TIMEOUT
        })
    );
    let cli = run(&["resume", "--socket=/x"], &[]);
    assert_eq!(cli.config.socket, PathBuf::from("/x"));
    let cli = run(&["status"], &[("DIND_INIT_SOCKET", "/env")]);
    assert_eq!(cli.config.socket, PathBuf::from("/env"));
    let cli = run(&["logs", "10-db.sh", "--socket=/y"], &[]);
    assert_eq!(
        cli.command,
        Some(Command::Logs {
            script: "10-db.sh".into()
        })
    );
    assert_eq!(cli.config.socket, PathBuf::from("/y"));
    assert_eq!(
        parse_with(&["logs"], &[]).unwrap_err().0,
        "`dind-init logs` needs a SCRIPT name"
    );
    assert!(parse_with(&["logs", "a.sh", "b.sh"], &[]).is_err());
}

#[test]
fn bad_input_names_the_flag_or_variable() {
    let error = |args: &[&str], env: &[(&str, &str)]| parse_with(args, env).unwrap_err().0;
    assert_eq!(
        error(&["--grace", "soon"], &[]),
        "--grace: `soon` is not a number of seconds"
    );
    assert_eq!(
        error(&[], &[("DIND_INIT_STOP_TIMEOUT", "-3")]),
        "DIND_INIT_STOP_TIMEOUT: `-3` must be zero or more seconds"
    );
    assert_eq!(
        error(&["--on-start-failure", "retry"], &[]),
        "--on-start-failure: `retry` is not `abort` or `continue`"
    );
    assert_eq!(
        error(&["--bogus"], &[]),
        "`dind-init` does not take `--bogus`; see `dind-init --help`"
    );
    assert_eq!(error(&["--grace"], &[]), "`--grace` needs a value");
    assert_eq!(
        error(&["status", "--wait", "later"], &[]).split(':').next(),
        Some("--wait")
    );
    assert_eq!(
        error(&["quiesce", "--json"], &[]),
        "`dind-init quiesce` does not take `--json`; see `dind-init quiesce --help`"
    );
    assert_eq!(
        error(&["logs", "a.sh", "--timeout", "3"], &[]),
        "`dind-init logs` does not take `--timeout`; see `dind-init logs --help`"
    );
}

/// The mistakes of a first hour, each one line naming what to do.
#[test]
fn a_newcomer_s_mistakes_get_one_line_each() {
    let error = |args: &[&str], env: &[(&str, &str)]| parse_with(args, env).unwrap_err().0;
    let no_programs = [("PATH", "/nonexistent")];
    let typo = error(&["statuss"], &no_programs);
    assert!(typo.contains("did you mean `status`?"), "{typo}");
    assert!(typo.contains("dind-init -- statuss"), "{typo}");
    // A program of that name on PATH is a main command, as it always was.
    let cli = run(&["sh", "-c", "true"], &[("PATH", "/bin:/usr/bin")]);
    assert_eq!(cli.config.main_command, ["sh", "-c", "true"]);
    assert_eq!(
        error(&["--init-dir", "/nonexistent"], &[]),
        "--init-dir /nonexistent: no such directory; create it and put the init.d scripts there, or leave --init-dir out to run without scripts"
    );
    assert!(
        error(&[], &[("DIND_INIT_DIR", "/nonexistent")])
            .starts_with("DIND_INIT_DIR /nonexistent: ")
    );
    assert!(error(&["snapshot", "--resume", "--rm", "c", "i"], &[]).contains("not both"));
    let podman = error(&["snapshot", "--engine", "podman", "c", "i"], &no_programs);
    assert!(
        podman.starts_with(
            "--engine podman: no `podman` on PATH; install it (`apt-get install podman`"
        ),
        "{podman}"
    );
}

#[test]
fn a_client_ignores_the_init_options_of_the_environment() {
    let cli = run(&["status"], &[("DIND_INIT_GRACE", "not a number")]);
    assert_eq!(cli.config, Config::default());
    assert!(matches!(cli.command, Some(Command::Status { .. })));
}

#[test]
fn help_and_version() {
    assert!(
        matches!(parse_with(&["--help"], &[]), Ok(Parsed::Help(text)) if text.contains("DIND_INIT_GRACE"))
    );
    assert!(matches!(parse_with(&["help"], &[]), Ok(Parsed::Help(_))));
    assert!(
        matches!(parse_with(&["-V"], &[]), Ok(Parsed::Version(line)) if line.starts_with("dind-init "))
    );
}
