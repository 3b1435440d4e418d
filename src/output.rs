//! The one writer of PID 1's stdout and stderr: dind-init's own log lines
//! and every script's prefixed output go through a queue to a thread of its
//! own. A log reader that stops reading (Docker's default blocking log mode
//! with a stalled driver, a full pipe) then blocks that thread, never the
//! supervisor: signals, reaping and the control socket go on. What does not
//! fit the queue's byte budget is dropped and counted, and the count is
//! reported as soon as the reader catches up.

use std::io::{self, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

/// Bytes that may wait in the queue; more are dropped.
const QUEUE_BUDGET: usize = 4 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

enum Message {
    Line(Stream, Vec<u8>),
    /// Answered once everything queued before it is written.
    Flush(Sender<()>),
}

struct Writer {
    queue: Sender<Message>,
    /// Bytes queued and not yet written.
    queued: AtomicUsize,
    /// Lines dropped since the last report.
    dropped: AtomicU64,
}

static WRITER: OnceLock<Writer> = OnceLock::new();

/// Starts the writer thread. Until it runs (and in the client role, which
/// never starts it), `write` writes directly.
pub fn start() -> io::Result<()> {
    let (queue, lines) = mpsc::channel();
    let writer = Writer {
        queue,
        queued: AtomicUsize::new(0),
        dropped: AtomicU64::new(0),
    };
    if WRITER.set(writer).is_err() {
        return Ok(());
    }
    std::thread::Builder::new()
        .name("dind-init-output".to_string())
        .spawn(move || {
            for message in lines {
                match message {
                    Message::Line(stream, bytes) => {
                        report_dropped();
                        write_now(stream, &bytes);
                        if let Some(writer) = WRITER.get() {
                            writer.queued.fetch_sub(bytes.len(), Ordering::SeqCst);
                        }
                    }
                    Message::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        })?;
    Ok(())
}

/// Queues `bytes` (whole lines) for `stream`; never blocks once started.
pub fn write(stream: Stream, bytes: Vec<u8>) {
    let Some(writer) = WRITER.get() else {
        write_now(stream, &bytes);
        return;
    };
    let length = bytes.len();
    if writer
        .queued
        .fetch_add(length, Ordering::SeqCst)
        .saturating_add(length)
        > QUEUE_BUDGET
    {
        writer.queued.fetch_sub(length, Ordering::SeqCst);
        writer.dropped.fetch_add(1, Ordering::SeqCst);
        return;
    }
    if writer.queue.send(Message::Line(stream, bytes)).is_err() {
        writer.queued.fetch_sub(length, Ordering::SeqCst);
    }
}

/// Waits up to `limit` for everything queued so far to be written: called
/// before PID 1 exits, so the last lines of a shutdown are not lost.
pub fn flush(limit: Duration) {
    let Some(writer) = WRITER.get() else { return };
    let (done, finished) = mpsc::channel();
    if writer.queue.send(Message::Flush(done)).is_ok() {
        let _ = finished.recv_timeout(limit);
    }
}

fn report_dropped() {
    let Some(writer) = WRITER.get() else { return };
    let dropped = writer.dropped.swap(0, Ordering::SeqCst);
    if dropped > 0 {
        let line = format!(
            "dind-init: warning: {dropped} log line(s) dropped: the log reader did not keep up\n"
        );
        write_now(Stream::Stderr, line.as_bytes());
    }
}

fn write_now(stream: Stream, bytes: &[u8]) {
    // A closed stdout or stderr must not take PID 1 down: the line is lost, nothing else.
    let _ = match stream {
        Stream::Stdout => io::stdout().lock().write_all(bytes),
        Stream::Stderr => io::stderr().lock().write_all(bytes),
    };
}
