//! Reading `/proc` to find the processes dind-init is responsible for.
//!
//! "Ours" means our descendants: in a container, everything but what
//! `docker exec` entered (whose parent lives outside the PID namespace, so
//! they show parent 0); when not PID 1, the tree below this subreaper. The
//! same rule serves the stray check at quiesce and the kill step at shutdown,
//! and never touches a process outside our tree.

use std::collections::{HashMap, HashSet};
use std::fs;

use serde::{Deserialize, Serialize};

use crate::text::escape_controls;

/// One process as read from `/proc/PID/stat` and `/proc/PID/cmdline`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: i32,
    #[serde(skip)]
    pub ppid: i32,
    /// The state letter of `/proc/PID/stat` (`Z` for a zombie).
    #[serde(skip)]
    pub state: char,
    /// The command line, or `[comm]` for kernel-ish processes with an empty one.
    pub command: String,
}

/// Parses the fields we need out of a `/proc/PID/stat` line. The command
/// name sits in parentheses and may itself hold spaces and parentheses, so
/// the fields after it are found from the last `)`.
pub fn parse_stat(line: &str) -> Option<(i32, String, char, i32)> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let pid = line.get(..open)?.trim().parse().ok()?;
    let comm = line.get(open.checked_add(1)?..close)?.to_string();
    let mut rest = line.get(close.checked_add(1)?..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((pid, comm, state, ppid))
}

/// Every process visible in `/proc` now. Processes that exit while being
/// read are simply left out.
pub fn scan() -> Vec<ProcessInfo> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(read_process)
        .collect()
}

fn read_process(pid: i32) -> Option<ProcessInfo> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (pid, comm, state, ppid) = parse_stat(&stat)?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let command =
        render_cmdline(&cmdline).unwrap_or_else(|| format!("[{}]", escape_controls(&comm)));
    Some(ProcessInfo {
        pid,
        ppid,
        state,
        command,
    })
}

fn render_cmdline(raw: &[u8]) -> Option<String> {
    let words: Vec<_> = raw
        .split(|&byte| byte == 0)
        .filter(|word| !word.is_empty())
        .map(|word| escape_controls(&String::from_utf8_lossy(word)).into_owned())
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// The live (non-zombie) descendants of `root` in `table`, in pid order.
pub fn descendants(table: &[ProcessInfo], root: i32) -> Vec<ProcessInfo> {
    let mut children: HashMap<i32, Vec<&ProcessInfo>> = HashMap::new();
    for process in table {
        children.entry(process.ppid).or_default().push(process);
    }
    let mut found = Vec::new();
    let mut queue = vec![root];
    let mut seen = HashSet::from([root]);
    while let Some(parent) = queue.pop() {
        for child in children.get(&parent).into_iter().flatten() {
            if seen.insert(child.pid) {
                queue.push(child.pid);
                if child.state != 'Z' {
                    found.push((*child).clone());
                }
            }
        }
    }
    found.sort_by_key(|process| process.pid);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(pid: i32, ppid: i32, state: char) -> ProcessInfo {
        ProcessInfo {
            pid,
            ppid,
            state,
            command: format!("p{pid}"),
        }
    }

    #[test]
    fn stat_with_tricky_command_names() {
        let line = "42 (my (weird) prog) S 7 42 42 0 -1 4194560";
        assert_eq!(
            parse_stat(line),
            Some((42, "my (weird) prog".into(), 'S', 7))
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn descendants_skip_zombies_and_foreign_trees() {
        let table = [
            process(1, 0, 'S'),
            process(10, 1, 'S'),
            process(11, 10, 'S'),
            process(12, 10, 'Z'),
            process(13, 12, 'S'),
            process(20, 0, 'S'), // entered with docker exec
            process(21, 20, 'S'),
        ];
        let pids: Vec<_> = descendants(&table, 1).iter().map(|p| p.pid).collect();
        assert_eq!(pids, [10, 11, 13]);
    }

    #[test]
    fn cmdline_rendering() {
        assert_eq!(
            render_cmdline(b"sleep\x0010\x00").as_deref(),
            Some("sleep 10")
        );
        assert_eq!(render_cmdline(b""), None);
    }
}
