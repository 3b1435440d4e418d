//! dind-init's own log lines: `dind-init: message`, with `warning: ` or
//! `error: ` after the colon where it applies, on stderr (through
//! `output`'s writer thread), one line at a time. No timestamps: `docker logs -t` adds them. Script output is not
//! logged through here; it is copied verbatim behind its `[name]` prefix
//! (see `script`).
//!
//! A small `tracing` subscriber of its own rather than tracing-subscriber's
//! formatter: dind-init logs flat messages without spans, and the formatter
//! would add a fifth of the binary's size.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU8, Ordering};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

use crate::config::LogLevel;
use crate::output;

/// Where a finished line goes: stderr, or a buffer in tests.
type LineSink = Box<dyn Fn(&[u8]) + Send + Sync>;

struct OneLineLogger {
    /// The least severe level that is written, as [`level_rank`]; it can be
    /// lowered after start-up (see [`quiet`]).
    max_level: &'static AtomicU8,
    /// Where each finished line goes.
    write_line: LineSink,
}

/// Orders levels from the most severe (0) to the least.
fn level_rank(level: Level) -> u8 {
    match level {
        Level::ERROR => 0,
        Level::WARN => 1,
        Level::INFO => 2,
        Level::DEBUG => 3,
        Level::TRACE => 4,
    }
}

fn tracing_level(level: LogLevel) -> Level {
    match level {
        LogLevel::Error => Level::ERROR,
        LogLevel::Warn => Level::WARN,
        LogLevel::Info => Level::INFO,
        LogLevel::Debug => Level::DEBUG,
    }
}

/// Collects an event's message and any other fields as ` key=value`.
#[derive(Default)]
struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl Subscriber for OneLineLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        level_rank(*metadata.level()) <= self.max_level.load(Ordering::Relaxed)
    }

    /// Asked again at every event rather than cached, since the level may change.
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let severity = match *event.metadata().level() {
            Level::ERROR => "error: ",
            Level::WARN => "warning: ",
            Level::DEBUG | Level::TRACE => "debug: ",
            Level::INFO => "",
        };
        let mut line = Line(format!("dind-init: {severity}"));
        event.record(&mut line);
        line.0.push('\n');
        (self.write_line)(line.0.as_bytes());
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// The level the installed logger writes at; [`quiet`] lowers it.
static LEVEL: AtomicU8 = AtomicU8::new(2);

/// Installs the logger; called once, before anything logs.
pub fn init(level: LogLevel) {
    LEVEL.store(level_rank(tracing_level(level)), Ordering::Relaxed);
    let logger = OneLineLogger {
        max_level: &LEVEL,
        write_line: Box::new(|line| output::write(output::Stream::Stderr, line.to_vec())),
    };
    let _ = tracing::subscriber::set_global_default(logger);
}

/// From now on, only warnings and errors: for a container with nothing to
/// tell (no init.d scripts, no log level asked for), where dind-init should
/// be as silent as tini on the main command's terminal.
pub fn quiet() {
    LEVEL.store(level_rank(Level::WARN), Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    static TEST_LEVEL: AtomicU8 = AtomicU8::new(2);

    #[test]
    fn one_line_per_event_with_severity_and_fields() {
        let written = Arc::new(Mutex::new(Vec::new()));
        let sink = written.clone();
        let logger = OneLineLogger {
            max_level: &TEST_LEVEL,
            write_line: Box::new(move |line| sink.lock().unwrap().extend_from_slice(line)),
        };
        tracing::subscriber::with_default(logger, || {
            tracing::info!("boot {}", 2);
            tracing::warn!(pid = 7, "stray");
            tracing::error!("start of a.sh failed");
            tracing::debug!("not shown");
        });
        let text = String::from_utf8(written.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "dind-init: boot 2\ndind-init: warning: stray pid=7\ndind-init: error: start of a.sh failed\n"
        );
    }
}
