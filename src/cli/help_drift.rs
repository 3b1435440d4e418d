//! The help cannot drift from the parsers: every flag of every [`SYNTAXES`]
//! table (the one each parser checks its flags against) is in that
//! command's `--help`, in the top-level help and in docs/reference.md, and
//! the parser does not refuse it; `-h` and `--help` after each command's
//! words print that help.

use super::*;

const REFERENCE: &str = include_str!("../../docs/reference.md");

fn parse_words(words: &[&str]) -> Result<Parsed, UsageError> {
    parse(words.iter().map(OsString::from), |_| None)
}

fn every_syntax() -> impl Iterator<Item = &'static Syntax> {
    SYNTAXES.iter().flat_map(|table| table.iter())
}

fn words_and(syntax: &Syntax, more: &[&'static str]) -> Vec<&'static str> {
    syntax
        .words
        .split_whitespace()
        .chain(more.iter().copied())
        .collect()
}

#[test]
fn help_after_every_command_is_its_help() {
    for syntax in every_syntax() {
        let help = (syntax.help)();
        assert!(
            help.contains(&format!("Usage: {}", syntax.command()))
                || (syntax.words.is_empty() && help.contains("Usage:\n  dind-init")),
            "{}: no usage line in\n{help}",
            syntax.command()
        );
        assert!(
            help.contains("Exit codes"),
            "{}: no exit codes",
            syntax.command()
        );
        for asked in ["-h", "--help"] {
            match parse_words(&words_and(syntax, &[asked])) {
                Ok(Parsed::Help(text)) => assert_eq!(text, help, "{} {asked}", syntax.command()),
                other => panic!("{} {asked}: {other:?}", syntax.command()),
            }
        }
    }
}

#[test]
fn every_flag_a_parser_takes_is_in_its_help_the_top_level_help_and_the_reference() {
    let top = help();
    for syntax in every_syntax() {
        let own = (syntax.help)();
        for flag in syntax.flags {
            let command = syntax.command();
            assert!(own.contains(flag), "{command} --help lacks {flag}");
            assert!(
                top.contains(flag),
                "dind-init --help lacks {flag} ({command})"
            );
            assert!(
                REFERENCE.contains(&format!("`{flag}")),
                "docs/reference.md lacks `{flag}` ({command})"
            );
            if !syntax.words.is_empty() {
                assert!(
                    REFERENCE.contains(&format!("`{command}`")),
                    "docs/reference.md lacks `{command}`"
                );
            }
        }
    }
}

#[test]
fn every_flag_in_a_table_is_taken_by_its_parser() {
    for syntax in every_syntax() {
        for flag in syntax.flags {
            let words = words_and(syntax, &[flag]);
            let refused = syntax.unknown(flag);
            if let Err(error) = parse_words(&words) {
                assert_ne!(error, refused, "{words:?}");
                assert!(!error.0.contains("does not take"), "{words:?}: {error}");
            }
        }
        let words = words_and(syntax, &["--no-such-flag"]);
        assert_eq!(
            parse_words(&words),
            Err(syntax.unknown("--no-such-flag")),
            "{words:?}"
        );
    }
}
