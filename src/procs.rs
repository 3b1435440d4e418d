//! Reading `/proc` to find the processes dind-init is responsible for.
//!
//! "Ours" means our descendants: in a container, everything but what
//! `docker exec` entered (whose parent lives outside the PID namespace, so
//! they show parent 0); when not PID 1, the tree below this subreaper. The
//! kill step at shutdown touches only those. The stray check at quiesce
//! looks wider as PID 1 ([`strays`]): every process of the PID namespace,
//! `docker exec`ed ones included, since any of them may be writing.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

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

/// Every process visible in `/proc` now, from `/proc/PID/stat` alone: its
/// `command` is `[comm]` until [`with_command_lines`] reads the real one,
/// which is worth it only for the few processes that are ours (reading a
/// command line takes the target's memory lock, which a busy process on a
/// host can hold for a while). Processes that exit while being read are
/// simply left out.
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
    Some(ProcessInfo {
        pid,
        ppid,
        state,
        command: comm_placeholder(&comm),
    })
}

/// `[comm]`: how a process without a command line (or not read yet) is shown.
fn comm_placeholder(comm: &str) -> String {
    format!("[{}]", escape_controls(comm))
}

/// `processes` with their command lines read off the runtime thread, each
/// within [`COMMAND_LINE_LIMIT`] (the `[comm]` of [`scan`] stays where the
/// command line is empty, the process is gone, or the read is too slow).
pub async fn with_command_lines(mut processes: Vec<ProcessInfo>) -> Vec<ProcessInfo> {
    for process in &mut processes {
        if let Some(command) = command_line(process.pid).await {
            process.command = command;
        }
    }
    processes
}

/// How long reading one command line may take. Reading
/// `/proc/PID/cmdline` takes the target's memory-map lock, which a process
/// stuck in uninterruptible sleep (a hung FUSE or NFS mount, common in
/// docker-in-docker) can hold for good; `/proc/PID/stat` takes no such lock.
pub const COMMAND_LINE_LIMIT: Duration = Duration::from_millis(250);

/// Pids whose command line is being read on a blocking thread right now. A
/// read stuck on a process is never started twice, so stuck threads are at
/// most one per stuck process.
static READS_IN_FLIGHT: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// The command line of `pid`, read on a blocking thread within
/// [`COMMAND_LINE_LIMIT`]: `None` when it has none (exiting, a zombie), is
/// gone, or the read is slower than that (it then finishes on its own).
pub async fn command_line(pid: i32) -> Option<String> {
    read_bounded(pid, COMMAND_LINE_LIMIT, command_of).await
}

async fn read_bounded(
    pid: i32,
    limit: Duration,
    read: fn(i32) -> Option<String>,
) -> Option<String> {
    {
        let mut in_flight = lock_ignoring_poison(&READS_IN_FLIGHT);
        if in_flight.contains(&pid) {
            return None;
        }
        in_flight.push(pid);
    }
    let reading = tokio::task::spawn_blocking(move || {
        let command = read(pid);
        lock_ignoring_poison(&READS_IN_FLIGHT).retain(|&p| p != pid);
        command
    });
    match tokio::time::timeout(limit, reading).await {
        Ok(Ok(command)) => command,
        Ok(Err(_)) => None,
        Err(_) => {
            tracing::debug!(
                "reading the command line of process {pid} takes over {}ms (uninterruptible sleep?); showing its name",
                limit.as_millis()
            );
            None
        }
    }
}

/// A poisoned lock only means another thread panicked while holding it; the
/// list is still consistent, and PID 1 must not panic too.
fn lock_ignoring_poison<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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

/// The processes in `table` a quiesce counts as strays: as PID 1
/// (`own_pid` 1), every live process of the PID namespace but ourselves;
/// otherwise (a subreaper in someone else's namespace) our live
/// descendants. Not counted: `exempt` (the main command), and the chain of
/// each client connected to the control socket (`clients`: the one that
/// asked, a `status --wait quiesced` after SIGUSR1), with its parents, as
/// far as it is not ours: a `docker exec`ed client waits for its answer and
/// writes nothing, while a daemon of ours that asks may still be writing.
/// In pid order.
pub fn strays(
    table: &[ProcessInfo],
    own_pid: i32,
    clients: &[i32],
    exempt: Option<i32>,
) -> Vec<ProcessInfo> {
    let ours = descendants(table, own_pid);
    if own_pid != 1 {
        return ours.into_iter().filter(|p| Some(p.pid) != exempt).collect();
    }
    let our_pids: HashSet<i32> = ours.iter().map(|p| p.pid).collect();
    let parents: HashMap<i32, i32> = table.iter().map(|p| (p.pid, p.ppid)).collect();
    let mut not_strays: HashSet<i32> = exempt.into_iter().collect();
    for &client in clients {
        let mut pid = client;
        // Each step goes to a parent; a table read while processes come and
        // go could hold a loop, which `insert` ends.
        while pid > 1 && !our_pids.contains(&pid) && not_strays.insert(pid) {
            let Some(&parent) = parents.get(&pid) else {
                break;
            };
            pid = parent;
        }
    }
    let mut found: Vec<ProcessInfo> = table
        .iter()
        .filter(|p| p.pid != own_pid && p.state != 'Z' && !not_strays.contains(&p.pid))
        .cloned()
        .collect();
    found.sort_by_key(|process| process.pid);
    found
}

/// A child of ours as the daemon watch needs it: what ties it to whoever
/// started it (process group and session) and when it started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildProcess {
    pub pid: i32,
    /// Process group: a daemon put in the background by a script keeps the
    /// script's; one that called `setsid` has its own.
    pub pgid: i32,
    /// Session: shared by everything dind-init started, unless `setsid`.
    pub sid: i32,
    /// `starttime` of `/proc/PID/stat`: clock ticks after the host booted.
    pub start_ticks: u64,
    /// Already exited and waiting to be reaped.
    pub zombie: bool,
    /// `[comm]`: the command line is read later, off the runtime thread
    /// and outside the reaper's lock ([`command_line`]).
    pub command: String,
}

/// Ticks per second of `starttime`: `USER_HZ`, which the kernel fixes at
/// 100 for `/proc` on every architecture dind-init is built for.
const TICKS_PER_SECOND: u64 = 100;

/// The parent, process group, session and start time of a `/proc/PID/stat`
/// line, counted from the last `)` as in [`parse_stat`].
pub fn parse_stat_ids(line: &str) -> Option<(i32, i32, i32, u64)> {
    let close = line.rfind(')')?;
    let fields: Vec<&str> = line
        .get(close.checked_add(1)?..)?
        .split_whitespace()
        .collect();
    // After the command: state (field 3), ppid (4), pgrp (5), session (6), ... starttime (22).
    let field = |n: usize| fields.get(n.checked_sub(3)?).copied();
    Some((
        field(4)?.parse().ok()?,
        field(5)?.parse().ok()?,
        field(6)?.parse().ok()?,
        field(22)?.parse().ok()?,
    ))
}

/// Every child of `parent` visible in `/proc` now, from `/proc/PID/stat` alone.
pub fn children(parent: i32) -> Vec<ChildProcess> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (ppid, pgid, sid, start_ticks) = parse_stat_ids(&stat)?;
            if ppid != parent {
                return None;
            }
            let (_, comm, state, _) = parse_stat(&stat)?;
            Some(ChildProcess {
                pid,
                pgid,
                sid,
                start_ticks,
                zombie: state == 'Z',
                command: comm_placeholder(&comm),
            })
        })
        .collect()
}

/// The command line of `pid` now, if it has one: a process that is
/// exiting (or a zombie) has none any more. Blocks as long as the target's
/// memory-map lock is held: call it through [`command_line`].
fn command_of(pid: i32) -> Option<String> {
    render_cmdline(&fs::read(format!("/proc/{pid}/cmdline")).ok()?)
}

/// Our own process group and session, which say nothing about who started a child.
pub fn own_group_and_session() -> (i32, i32) {
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    parse_stat_ids(&stat).map_or((0, 0), |(_, pgid, sid, _)| (pgid, sid))
}

/// Unix seconds at which a process with `start_ticks` started, from the
/// host's boot time (`btime` of `/proc/stat`).
pub fn start_unix_seconds(start_ticks: u64) -> Option<u64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let boot: u64 = stat
        .lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    boot.checked_add(start_ticks / TICKS_PER_SECOND)
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
    fn strays_are_the_whole_namespace_but_us_the_main_command_and_the_asking_chain() {
        let table = [
            process(1, 0, 'S'),
            process(10, 1, 'S'), // a daemon of a script
            process(11, 10, 'S'),
            process(12, 1, 'Z'),
            process(15, 1, 'S'), // the main command
            process(16, 15, 'S'),
            process(20, 0, 'S'), // docker exec sh -c 'writer & dind-init quiesce'
            process(21, 20, 'S'),
            process(22, 20, 'S'),
            process(30, 0, 'S'), // docker exec of a writer
            process(31, 30, 'S'),
            process(40, 10, 'S'), // a daemon of ours that asks
        ];
        let pids = |found: Vec<ProcessInfo>| found.iter().map(|p| p.pid).collect::<Vec<_>>();
        assert_eq!(
            pids(strays(&table, 1, &[22, 40], Some(15))),
            [10, 11, 16, 21, 30, 31, 40]
        );
        assert_eq!(
            pids(strays(&table, 1, &[], None)),
            [10, 11, 15, 16, 20, 21, 22, 30, 31, 40]
        );
        // A subreaper sees only its own tree.
        assert_eq!(pids(strays(&table, 10, &[40], None)), [11, 40]);
        // A parent loop (pids reused while reading) ends.
        let looping = [process(1, 0, 'S'), process(5, 6, 'S'), process(6, 5, 'S')];
        assert_eq!(pids(strays(&looping, 1, &[5], None)), Vec::<i32>::new());
    }

    #[test]
    fn stat_ids_after_a_tricky_command_name() {
        let line = "42 (a) b) S 7 40 30 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 12345 0 0";
        assert_eq!(parse_stat_ids(line), Some((7, 40, 30, 12345)));
        assert_eq!(parse_stat_ids("42 (short) S 7"), None);
    }

    #[test]
    fn our_own_children_are_found() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let own = std::process::id() as i32;
        let found = children(own);
        let pid = child.id() as i32;
        let command = command_of(pid);
        let _ = child.kill();
        let _ = child.wait();
        let entry = found.iter().find(|c| c.pid == pid).unwrap();
        assert_eq!(entry.command, "[sleep]");
        assert_eq!(command.as_deref(), Some("sleep 5"));
        assert_eq!(entry.pgid, own_group_and_session().0);
        assert!(start_unix_seconds(entry.start_ticks).is_some());
    }

    fn read_slowly(pid: i32) -> Option<String> {
        std::thread::sleep(Duration::from_secs(2));
        Some(format!("slow {pid}"))
    }

    fn read_at_once(pid: i32) -> Option<String> {
        Some(format!("quick {pid}"))
    }

    /// A read that blocks (as one on a process in D state does) costs the
    /// runtime thread its limit, never more, and is not started again while
    /// it is stuck; other pids are read meanwhile.
    #[test]
    fn a_slow_command_line_read_is_bounded_and_not_repeated() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let limit = Duration::from_millis(50);
            let started = std::time::Instant::now();
            assert_eq!(read_bounded(-7, limit, read_slowly).await, None);
            assert!(started.elapsed() < Duration::from_secs(1));
            // Still stuck: not read again, and answered at once.
            let again = std::time::Instant::now();
            assert_eq!(read_bounded(-7, limit, read_at_once).await, None);
            assert!(again.elapsed() < limit);
            assert_eq!(
                read_bounded(-8, limit, read_at_once).await.as_deref(),
                Some("quick -8")
            );
            // Once the stuck read ends, the pid can be read again.
            tokio::time::sleep(Duration::from_secs(3)).await;
            assert_eq!(
                read_bounded(-7, limit, read_at_once).await.as_deref(),
                Some("quick -7")
            );
        });
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
