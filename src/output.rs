//! The one writer of PID 1's stdout and stderr: dind-init's own log lines
//! and every script's prefixed output go through a queue to a thread of its
//! own. A log reader that stops reading (Docker's default blocking log mode
//! with a stalled driver, a full pipe) then blocks that thread, never the
//! supervisor: signals, reaping and the control socket go on. The thread
//! writes what has queued up in large batches (one write per stream switch
//! or per [`BATCH`] bytes), so a fast reader never falls behind a burst.
//! A script's output that does not fit the queue's byte budget waits for
//! room while the writer makes progress (the script's pipe fills and the
//! script waits, as it would without an init); only when the reader has
//! stalled ([`STALL`] without a write) is it dropped and counted, and the
//! count is reported when the reader catches up, at most once a second.
//! dind-init's own lines never wait: they are dropped at once when there is
//! no room.

use std::io::{self, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::time::{Duration, Instant};

/// Bytes that may wait in the queue; more are dropped.
const QUEUE_BUDGET: usize = 8 << 20;
/// The most bytes gathered into one write.
const BATCH: usize = 256 << 10;
/// How long the writer may go without finishing a write before the reader
/// counts as stalled and script output is dropped instead of waiting.
const STALL: Duration = Duration::from_millis(250);
/// The least time between two "lines dropped" reports.
const REPORT_EVERY: Duration = Duration::from_secs(1);

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
    /// Batches written so far: a writer whose count does not move is stalled.
    written: AtomicU64,
    /// Woken after every batch written, for output waiting for room.
    room: tokio::sync::Notify,
    /// The `written` count at which the reader was last found stalled: while
    /// it has not moved on, output is dropped without waiting again.
    stalled_at: AtomicU64,
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
        written: AtomicU64::new(0),
        room: tokio::sync::Notify::new(),
        stalled_at: AtomicU64::new(u64::MAX),
    };
    if WRITER.set(writer).is_err() {
        return Ok(());
    }
    std::thread::Builder::new()
        .name("dind-init-output".to_string())
        .spawn(move || {
            crate::sys::reblock_handled_signals();
            write_batches(&lines)
        })?;
    // Starting the first thread unblocked the C library's signals here too.
    crate::sys::reblock_handled_signals();
    Ok(())
}

/// The writer thread: waits for a message, gathers whatever else is queued
/// behind it into one batch per stream, writes it, and so on.
fn write_batches(lines: &mpsc::Receiver<Message>) {
    let mut batch: Vec<u8> = Vec::with_capacity(BATCH);
    let mut batch_stream = Stream::Stdout;
    let mut last_report: Option<Instant> = None;
    let mut next = lines.recv().ok();
    while let Some(message) = next.take() {
        match message {
            Message::Line(stream, bytes) => {
                if stream != batch_stream || batch.len().saturating_add(bytes.len()) > BATCH {
                    write_batch(batch_stream, &mut batch);
                }
                batch_stream = stream;
                batch.extend_from_slice(&bytes);
            }
            Message::Flush(done) => {
                write_batch(batch_stream, &mut batch);
                report_dropped(&mut None);
                let _ = done.send(());
            }
        }
        next = lines.try_recv().ok();
        if next.is_none() {
            write_batch(batch_stream, &mut batch);
            report_dropped(&mut last_report);
            next = lines.recv().ok();
        }
    }
}

/// Writes and empties `batch`, then gives its bytes back to the budget.
fn write_batch(stream: Stream, batch: &mut Vec<u8>) {
    if batch.is_empty() {
        return;
    }
    write_now(stream, batch);
    if let Some(writer) = WRITER.get() {
        writer.queued.fetch_sub(batch.len(), Ordering::SeqCst);
        writer.written.fetch_add(1, Ordering::SeqCst);
        writer.room.notify_waiters();
    }
    batch.clear();
}

/// Queues `bytes` (whole lines) for `stream`; never blocks: without room,
/// the lines are dropped and counted. For dind-init's own log lines.
pub fn write(stream: Stream, bytes: Vec<u8>) {
    let Some(writer) = WRITER.get() else {
        write_now(stream, &bytes);
        return;
    };
    if let Err(bytes) = try_queue(writer, stream, bytes) {
        writer
            .dropped
            .fetch_add(count_lines(&bytes), Ordering::SeqCst);
    }
}

/// Queues `bytes` (whole lines) for `stream`, waiting for room while the
/// writer makes progress; drops them only when it has stalled. For script
/// output: waiting here makes the script wait on its pipe, never PID 1.
pub async fn write_or_wait(stream: Stream, bytes: Vec<u8>) {
    let Some(writer) = WRITER.get() else {
        write_now(stream, &bytes);
        return;
    };
    let mut bytes = bytes;
    loop {
        let room = writer.room.notified();
        tokio::pin!(room);
        room.as_mut().enable();
        let progress = writer.written.load(Ordering::SeqCst);
        bytes = match try_queue(writer, stream, bytes) {
            Ok(()) => return,
            Err(bytes) => bytes,
        };
        let still_stalled = writer.stalled_at.load(Ordering::SeqCst) == progress;
        let woken = !still_stalled && tokio::time::timeout(STALL, room).await.is_ok();
        if !woken && writer.written.load(Ordering::SeqCst) == progress {
            writer.stalled_at.store(progress, Ordering::SeqCst);
            writer
                .dropped
                .fetch_add(count_lines(&bytes), Ordering::SeqCst);
            return;
        }
    }
}

/// Queues `bytes` if the budget has room; gives them back if not.
fn try_queue(writer: &Writer, stream: Stream, bytes: Vec<u8>) -> Result<(), Vec<u8>> {
    let length = bytes.len();
    if writer
        .queued
        .fetch_add(length, Ordering::SeqCst)
        .saturating_add(length)
        > QUEUE_BUDGET
    {
        writer.queued.fetch_sub(length, Ordering::SeqCst);
        return Err(bytes);
    }
    if writer.queue.send(Message::Line(stream, bytes)).is_err() {
        writer.queued.fetch_sub(length, Ordering::SeqCst);
    }
    Ok(())
}

fn count_lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Waits up to `limit` for everything queued so far to be written: called
/// before PID 1 exits, so the last lines of a shutdown are not lost.
pub fn flush(limit: Duration) {
    let Some(writer) = WRITER.get() else { return };
    // Nothing queued (counted until written): no round trip to the thread.
    if writer.queued.load(Ordering::SeqCst) == 0 {
        return;
    }
    let (done, finished) = mpsc::channel();
    if writer.queue.send(Message::Flush(done)).is_ok() {
        let _ = finished.recv_timeout(limit);
    }
}

/// Reports the lines dropped since the last report, unless one was made
/// less than [`REPORT_EVERY`] ago (`last`: `None` reports at once).
fn report_dropped(last: &mut Option<Instant>) {
    let Some(writer) = WRITER.get() else { return };
    if last.is_some_and(|at| at.elapsed() < REPORT_EVERY) {
        return;
    }
    let dropped = writer.dropped.swap(0, Ordering::SeqCst);
    if dropped > 0 {
        *last = Some(Instant::now());
    }
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
