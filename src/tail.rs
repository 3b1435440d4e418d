//! The last lines of a script's output, kept so that `status` and
//! `dind-init logs SCRIPT` can say why a script failed without the container
//! log. Bounded by lines and by bytes, control characters escaped, so one
//! chatty daemon or a line of binary garbage cannot grow PID 1 or break a
//! terminal. Shared between the output forwarders of a script (its start,
//! its stop, the daemons that keep its pipes) and the supervisor, which
//! copies it into each status snapshot.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::text::{cut, escape_controls};

/// Lines kept per script.
pub const MAX_LINES: usize = 20;
/// Bytes kept per script, escaped lines summed.
pub const MAX_BYTES: usize = 8 * 1024;
/// Bytes kept of one line; the rest is cut and marked with `…`.
pub const MAX_LINE_BYTES: usize = 1024;

/// The bounded tail of one script's output.
#[derive(Debug, Default)]
pub struct OutputTail {
    /// Escaped lines, oldest first.
    lines: VecDeque<String>,
    /// Sum of the lengths of `lines`.
    bytes: usize,
}

/// Called with the lines kept after every new one: how the tail reaches
/// the published status between two snapshots of the supervisor.
pub type OnChange = Box<dyn Fn(Vec<String>) + Send + Sync>;

/// A tail shared by the forwarders that write it and the supervisor that reads it.
pub struct Tail {
    /// The lines kept.
    kept: Mutex<OutputTail>,
    /// Told about every change, outside the lock.
    on_change: OnChange,
}

pub type SharedTail = Arc<Tail>;

/// A new, empty shared tail that calls `on_change` after each line.
pub fn shared(on_change: OnChange) -> SharedTail {
    Arc::new(Tail {
        kept: Mutex::new(OutputTail::default()),
        on_change,
    })
}

impl Tail {
    fn kept(&self) -> std::sync::MutexGuard<'_, OutputTail> {
        // A poisoned lock only means a panic elsewhere while pushing; the
        // queue is still consistent, and PID 1 must not panic too.
        self.kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends raw output lines (their newlines dropped) and tells
    /// `on_change` once, however many there were.
    pub fn record_lines<'a>(&self, raws: impl IntoIterator<Item = &'a [u8]>) {
        let lines = {
            let mut kept = self.kept();
            for raw in raws {
                kept.push(escape_line(raw));
            }
            kept.lines()
        };
        (self.on_change)(lines);
    }

    /// The lines kept so far, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.kept().lines()
    }
}

impl std::fmt::Debug for Tail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tail").field("kept", &*self.kept()).finish()
    }
}

impl OutputTail {
    /// The lines kept, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.lines.iter().cloned().collect()
    }

    /// Adds an already escaped line, dropping the oldest ones beyond the bounds.
    pub fn push(&mut self, line: String) {
        self.bytes = self.bytes.saturating_add(line.len());
        self.lines.push_back(line);
        while self.lines.len() > MAX_LINES || self.bytes > MAX_BYTES {
            let Some(oldest) = self.lines.pop_front() else {
                break;
            };
            self.bytes = self.bytes.saturating_sub(oldest.len());
        }
    }
}

/// One line of output as text safe to print: invalid UTF-8 replaced,
/// control characters (but the final newline, which is dropped) escaped as
/// everywhere else ([`escape_controls`]), and at most [`MAX_LINE_BYTES`]
/// kept, the cut marked with `…`.
pub fn escape_line(raw: &[u8]) -> String {
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    let text = String::from_utf8_lossy(raw);
    cut(&escape_controls(&text), MAX_LINE_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        let rows: [(&[u8], &str); 7] = [
            (b"plain line\n", "plain line"),
            (b"no newline", "no newline"),
            (b"\x1b[31mred\x1b[0m\n", "\\x1b[31mred\\x1b[0m"),
            (b"tab\there\r\n", "tab\\there\\r"),
            (b"back\\slash", "back\\slash"),
            (b"bad \xff utf8", "bad \u{fffd} utf8"),
            ("c1 \u{85} control".as_bytes(), "c1 \\u{85} control"),
        ];
        for (raw, escaped) in rows {
            assert_eq!(escape_line(raw), escaped, "{raw:?}");
        }
    }

    #[test]
    fn a_long_line_is_cut() {
        let line = escape_line(&[b'a'; 5000]);
        assert!(
            line.len() <= MAX_LINE_BYTES + '…'.len_utf8(),
            "{}",
            line.len()
        );
        assert!(line.ends_with('…'));
    }

    #[test]
    fn bounded_by_lines_and_bytes() {
        let seen = Arc::new(Mutex::new(0));
        let counter = seen.clone();
        let tail = shared(Box::new(move |_| *counter.lock().unwrap() += 1));
        for n in 0..50 {
            tail.record_lines([format!("line {n}\n").as_bytes()]);
        }
        assert_eq!(*seen.lock().unwrap(), 50, "told about every line");
        let kept = tail.lines();
        assert_eq!(kept.len(), MAX_LINES);
        assert_eq!(kept.first().map(String::as_str), Some("line 30"));
        assert_eq!(kept.last().map(String::as_str), Some("line 49"));

        let tail = shared(Box::new(|_| {}));
        for _ in 0..20 {
            tail.record_lines([&[b'x'; 2000][..]]);
        }
        let kept = tail.lines();
        let cut = MAX_LINE_BYTES + '…'.len_utf8();
        assert_eq!(
            kept.len(),
            MAX_BYTES / cut,
            "lines of 2000 bytes cut to {cut}"
        );
        assert!(kept.iter().map(String::len).sum::<usize>() <= MAX_BYTES);
    }
}
