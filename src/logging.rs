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

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use crate::config::LogLevel;
use crate::output;

/// Where a finished line goes: stderr, or a buffer in tests.
type LineSink = Box<dyn Fn(&[u8]) + Send + Sync>;

struct OneLineLogger {
    /// The least severe level that is written.
    max_level: Level,
    write_line: LineSink,
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
        *metadata.level() <= self.max_level
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

/// Installs the logger; called once, before anything logs.
pub fn init(level: LogLevel) {
    let max_level = match level {
        LogLevel::Error => Level::ERROR,
        LogLevel::Warn => Level::WARN,
        LogLevel::Info => Level::INFO,
        LogLevel::Debug => Level::DEBUG,
    };
    let logger = OneLineLogger {
        max_level,
        write_line: Box::new(|line| output::write(output::Stream::Stderr, line.to_vec())),
    };
    let _ = tracing::subscriber::set_global_default(logger);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn one_line_per_event_with_severity_and_fields() {
        let written = Arc::new(Mutex::new(Vec::new()));
        let sink = written.clone();
        let logger = OneLineLogger {
            max_level: Level::INFO,
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
