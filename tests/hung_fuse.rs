//! A FUSE mount that hangs: one file whose reads the server receives and
//! never answers until [`HungFuse::release`], as a dead NFS server or a
//! wedged FUSE daemon (sshfs, s3fs, a hung fuse-overlayfs) leaves a mount.
//! The server speaks the kernel's FUSE protocol on `/dev/fuse` itself (a
//! thread of the test), so no FUSE library is needed.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use crate::harness::WAIT;

// Opcodes and structure sizes of include/uapi/linux/fuse.h (protocol 7.31).
const FUSE_LOOKUP: u32 = 1;
const FUSE_FORGET: u32 = 2;
const FUSE_GETATTR: u32 = 3;
const FUSE_OPEN: u32 = 14;
const FUSE_READ: u32 = 15;
const FUSE_RELEASE: u32 = 18;
const FUSE_FLUSH: u32 = 25;
const FUSE_INIT: u32 = 26;
const FUSE_INTERRUPT: u32 = 36;
const FUSE_BATCH_FORGET: u32 = 42;
const IN_HEADER: usize = 40;
const ROOT: u64 = 1;
const FILE_NODE: u64 = 2;
const FILE_NAME: &str = "pages";
const FILE_SIZE: u64 = 1 << 20;

/// What the server has seen, shared with the test.
#[derive(Default)]
struct Held {
    /// `unique` of every read not answered yet.
    reads: Vec<u64>,
    /// Set by [`HungFuse::release`]: reads are answered with EIO from then on.
    released: bool,
}

pub struct HungFuse {
    pub mountpoint: PathBuf,
    device: Arc<File>,
    held: Arc<(Mutex<Held>, Condvar)>,
}

impl HungFuse {
    /// Mounts the hanging file system on `mountpoint` (created) and serves it.
    pub fn mount(mountpoint: &Path) -> HungFuse {
        fs::create_dir_all(mountpoint).unwrap();
        let device = Arc::new(
            OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/fuse")
                .expect("/dev/fuse"),
        );
        let options = format!(
            "fd={},rootmode=40000,user_id=0,group_id=0",
            device.as_raw_fd()
        );
        let target = std::ffi::CString::new(mountpoint.as_os_str().as_bytes()).unwrap();
        let options = std::ffi::CString::new(options).unwrap();
        // SAFETY: every pointer is a NUL-terminated string that outlives the call.
        let mounted = unsafe {
            libc::mount(
                c"dind-init-test-hung".as_ptr(),
                target.as_ptr(),
                c"fuse".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                options.as_ptr().cast(),
            )
        };
        assert_eq!(
            mounted,
            0,
            "mount fuse on {}: {}",
            mountpoint.display(),
            std::io::Error::last_os_error()
        );
        let held = Arc::new((Mutex::new(Held::default()), Condvar::new()));
        let (serving, shared) = (device.clone(), held.clone());
        std::thread::spawn(move || serve(&serving, &shared));
        HungFuse {
            mountpoint: mountpoint.to_path_buf(),
            device,
            held,
        }
    }

    /// The one file, whose reads hang.
    pub fn file(&self) -> PathBuf {
        self.mountpoint.join(FILE_NAME)
    }

    /// Blocks until the server holds a read it has not answered.
    pub fn wait_for_a_held_read(&self) {
        let (held, changed) = &*self.held;
        let deadline = Instant::now() + WAIT;
        let mut guard = held.lock().unwrap();
        while guard.reads.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no read reached the FUSE server within {WAIT:?}"
            );
            guard = changed.wait_timeout(guard, left).unwrap().0;
        }
    }

    /// The mount comes back, with an error: every held read and every later
    /// one is answered EIO, which wakes whatever waited on them.
    pub fn release(&self) {
        let mut guard = self.held.0.lock().unwrap();
        guard.released = true;
        for unique in std::mem::take(&mut guard.reads) {
            reply(&self.device, unique, -libc::EIO, &[]);
        }
    }
}

impl Drop for HungFuse {
    fn drop(&mut self) {
        self.release();
        let target = std::ffi::CString::new(self.mountpoint.as_os_str().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path that outlives the call. Lazy, so a
        // failed test still leaves no busy mount behind; the server thread
        // ends when the kernel ends the connection.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

fn serve(device: &File, held: &(Mutex<Held>, Condvar)) {
    let mut buffer = vec![0u8; 1 << 20 | 4096];
    loop {
        let length = match (&*device).read(&mut buffer) {
            Ok(length) => length,
            // An interrupted request (ENOENT) or a signal: go on.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EINTR)) => continue,
            // ENODEV: unmounted, the connection is gone.
            Err(_) => return,
        };
        let Some(request) = buffer.get(..length) else {
            return;
        };
        let opcode = u32_at(request, 4);
        let unique = u64_at(request, 8);
        let node = u64_at(request, 16);
        let body = request.get(IN_HEADER..).unwrap_or_default();
        match opcode {
            FUSE_INIT => reply(device, unique, 0, &init_out(u32_at(body, 8))),
            FUSE_LOOKUP if node == ROOT && name_of(body) == FILE_NAME.as_bytes() => {
                reply(device, unique, 0, &entry_out())
            }
            FUSE_LOOKUP => reply(device, unique, -libc::ENOENT, &[]),
            FUSE_GETATTR => reply(device, unique, 0, &attr_out(node)),
            FUSE_OPEN => reply(device, unique, 0, &[0; 16]),
            FUSE_READ => {
                let (lock, changed) = held;
                let mut guard = lock.lock().unwrap();
                if guard.released {
                    reply(device, unique, -libc::EIO, &[]);
                } else {
                    guard.reads.push(unique);
                    changed.notify_all();
                }
            }
            FUSE_RELEASE | FUSE_FLUSH => reply(device, unique, 0, &[]),
            FUSE_FORGET | FUSE_BATCH_FORGET | FUSE_INTERRUPT => {}
            _ => reply(device, unique, -libc::ENOSYS, &[]),
        }
    }
}

fn reply(device: &File, unique: u64, error: i32, body: &[u8]) {
    let length = u32::try_from(16 + body.len()).unwrap();
    let mut message = Vec::with_capacity(16 + body.len());
    message.extend_from_slice(&length.to_ne_bytes());
    message.extend_from_slice(&error.to_ne_bytes());
    message.extend_from_slice(&unique.to_ne_bytes());
    message.extend_from_slice(body);
    // A request the kernel gave up on (interrupted) has no one to answer.
    let _ = (&*device).write_all(&message);
}

/// `fuse_init_out`, 64 bytes: protocol 7.31, no optional features.
fn init_out(max_readahead: u32) -> Vec<u8> {
    let mut out = vec![0u8; 64];
    put_u32(&mut out, 0, 7);
    put_u32(&mut out, 4, 31);
    put_u32(&mut out, 8, max_readahead);
    out[16..18].copy_from_slice(&16u16.to_ne_bytes()); // max_background
    out[18..20].copy_from_slice(&12u16.to_ne_bytes()); // congestion_threshold
    put_u32(&mut out, 20, 4096); // max_write
    put_u32(&mut out, 24, 1); // time_gran
    out
}

/// `fuse_attr`, 88 bytes: the root directory or the file.
fn attr(node: u64) -> Vec<u8> {
    let mut out = vec![0u8; 88];
    out[0..8].copy_from_slice(&node.to_ne_bytes());
    let (size, mode, links) = if node == ROOT {
        (0, libc::S_IFDIR | 0o755, 2)
    } else {
        (FILE_SIZE, libc::S_IFREG | 0o444, 1)
    };
    out[8..16].copy_from_slice(&size.to_ne_bytes());
    out[16..24].copy_from_slice(&(size / 512).to_ne_bytes());
    put_u32(&mut out, 60, mode);
    put_u32(&mut out, 64, links);
    put_u32(&mut out, 80, 4096); // blksize
    out
}

/// `fuse_entry_out`: the file, valid for an hour.
fn entry_out() -> Vec<u8> {
    let mut out = vec![0u8; 40];
    out[0..8].copy_from_slice(&FILE_NODE.to_ne_bytes());
    out[16..24].copy_from_slice(&3600u64.to_ne_bytes());
    out[24..32].copy_from_slice(&3600u64.to_ne_bytes());
    out.extend(attr(FILE_NODE));
    out
}

/// `fuse_attr_out`: `node`'s attributes, valid for an hour.
fn attr_out(node: u64) -> Vec<u8> {
    let mut out = vec![0u8; 16];
    out[0..8].copy_from_slice(&3600u64.to_ne_bytes());
    out.extend(attr(node));
    out
}

fn name_of(body: &[u8]) -> &[u8] {
    body.split(|&b| b == 0).next().unwrap_or_default()
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .map_or(0, |b| u32::from_ne_bytes(b.try_into().unwrap()))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .map_or(0, |b| u64::from_ne_bytes(b.try_into().unwrap()))
}

fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_ne_bytes());
}
