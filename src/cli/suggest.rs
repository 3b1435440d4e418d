//! "Did you mean `status`?": a first word one edit away from a subcommand,
//! that names no program either, is a typo, not a main command to run (it
//! would only fail with 127). Pure and unit-tested.

use std::ffi::OsStr;
use std::path::Path;

/// The subcommand `word` is one edit (insert, delete, replace, swap two
/// neighbours) away from, when `word` is not a program on `path` either.
pub(super) fn subcommand_meant(word: &str, path: Option<&OsStr>) -> Option<&'static str> {
    if word.contains('/') || is_program_on(word, path) {
        return None;
    }
    super::SYNTAXES
        .iter()
        .flat_map(|table| table.iter())
        .filter_map(|syntax| syntax.words.split_whitespace().next())
        .chain(["help", "pool"])
        .find(|name| one_edit_apart(word, name))
}

fn is_program_on(word: &str, path: Option<&OsStr>) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.is_some_and(|path| {
        std::env::split_paths(path).any(|dir| {
            Path::new(&dir)
                .join(word)
                .metadata()
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Exactly one insertion, deletion, replacement or swap of neighbours.
fn one_edit_apart(a: &str, b: &str) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a == b {
        return false;
    }
    let common_start = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let (a_rest, b_rest) = (a.get(common_start..), b.get(common_start..));
    let (Some(a_rest), Some(b_rest)) = (a_rest, b_rest) else {
        return false;
    };
    let tail = |s: &[char], skip: usize| s.get(skip..).map(<[char]>::to_vec);
    // Replace, delete from a, insert into a.
    tail(a_rest, 1) == tail(b_rest, 1)
        || tail(a_rest, 1).as_deref() == Some(b_rest)
        || Some(a_rest) == tail(b_rest, 1).as_deref()
        // Two neighbours swapped.
        || (a_rest.len() == b_rest.len()
            && a_rest.len() >= 2
            && a_rest.first() == b_rest.get(1)
            && a_rest.get(1) == b_rest.first()
            && tail(a_rest, 2) == tail(b_rest, 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_edit_from_a_subcommand_is_a_typo() {
        for (typo, meant) in [
            ("statuss", "status"),
            ("stats", "status"),
            ("sattus", "status"),
            ("quiese", "quiesce"),
            ("resum", "resume"),
            ("log", "logs"),
            ("snapshto", "snapshot"),
            ("pol", "pool"),
            ("hepl", "help"),
        ] {
            assert_eq!(subcommand_meant(typo, None), Some(meant), "{typo}");
        }
        for word in ["status", "sh", "stat", "nginx", "./statuss", "sleep", ""] {
            assert_eq!(subcommand_meant(word, None), None, "{word}");
        }
    }

    #[test]
    fn a_program_of_that_name_on_path_runs() {
        let dir = std::env::temp_dir().join(format!("dind-init-suggest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let program = dir.join("pools");
        std::fs::write(&program, "").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.clone().into_os_string();
        assert_eq!(subcommand_meant("pools", Some(&path)), None);
        assert_eq!(subcommand_meant("poool", Some(&path)), Some("pool"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
