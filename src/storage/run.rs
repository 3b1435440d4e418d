//! The start and the stop: gathering the facts (mounts, devices, files),
//! applying the pure decisions, and the file and tool operations between
//! the fault points.

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use super::mountinfo::{self, Mount};
use super::ownership::{self, Ownership};
use super::placement::{self, LOOP_MAJOR, Placement};
use super::record::{self, Contents, Mode, ModeChoice, Record};
use super::{ext4, fault, files, tool};

/// The places the storage step uses.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Committed with the L2: the record, the journal, the saved copy.
    pub state: PathBuf,
    /// A volume (not committed): the loop mode's live file and its owner.
    pub live: PathBuf,
    /// The inner engine's default data root.
    pub docker: PathBuf,
    /// What 40-dockerd.sh and 50-image-bundle.sh read.
    pub env_file: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            state: "/var/lib/dind-storage".into(),
            live: "/var/lib/dind-storage-live".into(),
            docker: "/var/lib/docker".into(),
            env_file: "/run/dind-storage.env".into(),
        }
    }
}

impl Paths {
    pub(super) fn record(&self) -> PathBuf {
        self.state.join("record")
    }
    pub(super) fn journal(&self) -> PathBuf {
        self.state.join("journal")
    }
    pub(super) fn saved(&self) -> PathBuf {
        self.state.join("docker.img")
    }
    pub(super) fn saved_new(&self) -> PathBuf {
        self.state.join("docker.img.new")
    }
    pub(super) fn live_file(&self) -> PathBuf {
        self.live.join("docker.img")
    }
    pub(super) fn owner(&self) -> PathBuf {
        self.live.join("owner")
    }
}

fn say(line: &str) {
    println!("{line}");
}

fn warn(line: &str) {
    eprintln!("warning: {line}");
}

/// What the decisions read about the mounts, gathered once per step.
struct Facts {
    mounts: Vec<Mount>,
}

impl Facts {
    fn gather() -> Result<Facts, String> {
        let text = fs::read_to_string("/proc/self/mountinfo")
            .map_err(|error| format!("reading /proc/self/mountinfo failed: {error}"))?;
        Ok(Facts {
            mounts: mountinfo::parse(&text)?,
        })
    }

    fn placement(&self, path: &Path, live_file: &Path) -> Placement {
        let backing = |minor: u32| backing_file(minor);
        placement::classify(&placement::Facts {
            mounts: &self.mounts,
            path,
            device: device_of(path),
            live_file,
            backing_file: &backing,
        })
    }

    fn our_loop_mounted(&self, paths: &Paths) -> bool {
        let backing = |minor: u32| backing_file(minor);
        let live_file = paths.live_file();
        placement::our_loop_mounted(
            &self.mounts,
            &paths.docker,
            &placement::Facts {
                mounts: &self.mounts,
                path: &paths.docker,
                device: device_of(&paths.docker),
                live_file: &live_file,
                backing_file: &backing,
            },
        )
    }

    /// The mount at `point` itself (the last one there), if any.
    fn mount_at(&self, point: &Path) -> Option<&Mount> {
        self.mounts.iter().rfind(|m| m.mount_point == point)
    }
}

/// `st_dev` of `path` or of its nearest existing parent.
fn device_of(path: &Path) -> (u32, u32) {
    path.ancestors()
        .find_map(|p| fs::metadata(p).ok())
        .map(|m| {
            let dev = m.dev();
            (
                u32::try_from(nix::sys::stat::major(dev)).unwrap_or(u32::MAX),
                u32::try_from(nix::sys::stat::minor(dev)).unwrap_or(u32::MAX),
            )
        })
        .unwrap_or((u32::MAX, u32::MAX))
}

fn backing_file(minor: u32) -> Option<PathBuf> {
    let text = fs::read_to_string(format!(
        "/sys/dev/block/{LOOP_MAJOR}:{minor}/loop/backing_file"
    ))
    .ok()?;
    Some(PathBuf::from(text.trim_end_matches('\n')))
}

/// Why a commit cannot store the inner engine's data (None: it can).
fn commit_blocker(facts: &Facts, paths: &Paths, data_root: Option<&Path>) -> Option<String> {
    let live_file = paths.live_file();
    if let Placement::Uncommitted { mount_point } = facts.placement(&paths.state, &live_file) {
        return Some(format!(
            "{} is on the volume or bind mount {}, which docker commit skips: the inner engine's data cannot be committed; do not declare a volume or mount there",
            paths.state.display(),
            mount_point.display()
        ));
    }
    let data_root = data_root?;
    if let Placement::Uncommitted { mount_point } = facts.placement(data_root, &live_file) {
        return Some(format!(
            "the inner engine's recorded data root {} is on the volume or bind mount {}, which docker commit skips: run the image without a volume or mount there",
            data_root.display(),
            mount_point.display()
        ));
    }
    // The engine's own views of its layers (left by a dockerd that did not
    // stop cleanly) hold nothing the data root does not.
    let below: Vec<String> = mountinfo::mounts_below(&facts.mounts, data_root)
        .iter()
        .filter(|m| m.fs_type != "overlay" && m.fs_type != "fuse.fuse-overlayfs")
        .map(|m| m.mount_point.display().to_string())
        .collect();
    (!below.is_empty()).then(|| {
        format!(
            "{} is mounted below the inner engine's data root {}: docker commit skips what is on it",
            below.join(", "),
            data_root.display()
        )
    })
}

fn read_record(paths: &Paths) -> Result<Option<Record>, String> {
    files::read_optional(&paths.record())?
        .map(|text| Record::parse(&text).map_err(|e| format!("{}: {e}", paths.record().display())))
        .transpose()
}

fn contents(path: &Path) -> Contents {
    match fs::read_dir(path).map(|mut entries| entries.next().is_none()) {
        Err(_) => Contents::Missing,
        Ok(true) => Contents::Empty,
        Ok(false) => Contents::Present,
    }
}

fn make_dir(path: &Path) -> Result<(), String> {
    fs::create_dir_all(path).map_err(|error| format!("creating {} failed: {error}", path.display()))
}

fn remove_tree(path: &Path) -> Result<(), String> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(format!("removing {} failed: {error}", path.display())),
    }
}

/// A device node, unless one is there.
fn device_node(
    path: &str,
    kind: nix::sys::stat::SFlag,
    mode: u32,
    major: u64,
    minor: u64,
) -> Result<(), String> {
    if Path::new(path).exists() {
        return Ok(());
    }
    nix::sys::stat::mknod(
        path,
        kind,
        nix::sys::stat::Mode::from_bits_truncate(mode),
        nix::sys::stat::makedev(major, minor),
    )
    .or_else(|errno| {
        if errno == nix::errno::Errno::EEXIST {
            Ok(())
        } else {
            Err(errno)
        }
    })
    .map_err(|errno| format!("making the device node {path} failed: {errno}"))
}

fn ensure_fuse() -> Result<(), String> {
    device_node("/dev/fuse", nix::sys::stat::SFlag::S_IFCHR, 0o666, 10, 229)
}

/// New /dev/loopN nodes may be missing in a container's /dev: up to 16
/// beyond the highest the kernel lists (loop-control makes the next one on
/// demand), at least loop0-loop63.
fn loop_nodes() -> Result<(), String> {
    device_node(
        "/dev/loop-control",
        nix::sys::stat::SFlag::S_IFCHR,
        0o660,
        10,
        237,
    )?;
    let highest = fs::read_dir("/sys/block")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    e.file_name()
                        .to_str()?
                        .strip_prefix("loop")?
                        .parse::<u64>()
                        .ok()
                })
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    for n in 0..=highest.saturating_add(16).max(63) {
        device_node(
            &format!("/dev/loop{n}"),
            nix::sys::stat::SFlag::S_IFBLK,
            0o660,
            7,
            n,
        )?;
    }
    Ok(())
}

/// Whether fuse-overlayfs can make a directory on the L2's own file
/// system. It cannot where that is itself fuse-overlayfs (an L1 engine with
/// the fuse-overlayfs driver refuses the nested one's opaque xattr): `auto`
/// takes vfs there.
fn fuse_overlayfs_works(paths: &Paths) -> Result<bool, String> {
    let probe = paths.state.join(format!("probe.{}", std::process::id()));
    remove_tree(&probe)?;
    for dir in ["lower", "upper", "work", "merged"] {
        make_dir(&probe.join(dir))?;
    }
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        probe.join("lower").display(),
        probe.join("upper").display(),
        probe.join("work").display()
    );
    let merged = probe.join("merged");
    let works = match tool::run(
        "probing fuse-overlayfs",
        "fuse-overlayfs",
        &["-o".as_ref(), options.as_ref(), merged.as_os_str()],
    ) {
        Ok(_) => {
            let made = fs::create_dir(merged.join("directory")).is_ok();
            tool::run(
                "unmounting the fuse-overlayfs probe",
                "umount",
                &[merged.as_os_str()],
            )?;
            made
        }
        Err(_) => false,
    };
    remove_tree(&probe)?;
    Ok(works)
}

/// `dind-init storage start`.
pub fn start(paths: &Paths) -> Result<(), String> {
    make_dir(&paths.state)?;
    let facts = Facts::gather()?;
    let record = read_record(paths)?;
    let legacy_mode = files::read_optional(&paths.state.join("mode"))?;
    let recorded = record
        .as_ref()
        .map(|r| r.mode.name().to_string())
        .or(legacy_mode.map(|m| m.trim().to_string()));
    let requested = std::env::var("DIND_STORAGE").ok();
    let mode = match record::choose_mode(
        recorded.as_deref(),
        paths.saved().exists(),
        requested.as_deref(),
    )? {
        ModeChoice::Recorded(mode) | ModeChoice::New(mode) => mode,
        ModeChoice::Measure => {
            ensure_fuse()?;
            let works = fuse_overlayfs_works(paths)?;
            let mode = if works {
                Mode::FuseOverlayfs
            } else {
                Mode::Vfs
            };
            eprintln!(
                "auto: storage mode {} (fuse-overlayfs {} make directories here)",
                mode.name(),
                if works { "can" } else { "cannot" }
            );
            mode
        }
    };
    // An image of an older script: its data is where that script put it.
    let previous = record.clone().or_else(|| {
        (mode == Mode::Loop && paths.saved().exists()).then(|| Record {
            mode,
            data_root: paths.docker.clone(),
            saved: true,
        })
    });
    let data_root = match mode {
        Mode::Loop => start_loop(paths, &facts, previous.as_ref())?,
        Mode::Vfs | Mode::FuseOverlayfs => start_plain(paths, &facts, mode, previous.as_ref())?,
    };
    let record = Record {
        mode,
        data_root: data_root.clone(),
        saved: previous.as_ref().is_some_and(|r| r.saved),
    };
    if read_record(paths)?.as_ref() != Some(&record) {
        files::write_atomic(&paths.record(), &record.render())?;
    }
    // The mode alone, as older scripts wrote it: tools and tests read it.
    let mode_file = paths.state.join("mode");
    let mode_line = format!("{}\n", mode.name());
    if files::read_optional(&mode_file)?.as_deref() != Some(mode_line.as_str()) {
        files::write_atomic(&mode_file, &mode_line)?;
    }
    files::write_atomic(
        &paths.env_file,
        &format!(
            "DIND_STORAGE={}\nDIND_STORAGE_DRIVER={}\nDIND_DOCKER_ROOT={}\n",
            mode.name(),
            mode.driver(),
            data_root.display()
        ),
    )?;
    say(&format!("storage mode {}", mode.name()));
    let plain_root = (mode != Mode::Loop).then_some(data_root.as_path());
    if let Some(blocker) = commit_blocker(&facts, paths, plain_root) {
        warn(&format!("{blocker}; every quiesce is not commit-safe"));
    }
    Ok(())
}

/// The plain-file modes: the recorded data root, or (first boot)
/// /var/lib/docker where a commit stores it, else a directory in the state.
fn start_plain(
    paths: &Paths,
    facts: &Facts,
    mode: Mode,
    record: Option<&Record>,
) -> Result<PathBuf, String> {
    if mode == Mode::FuseOverlayfs {
        ensure_fuse()?;
        if !fuse_overlayfs_works(paths)? {
            warn(
                "fuse-overlayfs cannot make a directory on this L2's file system (the L1 engine's storage driver is fuse-overlayfs? it refuses the nested one's opaque xattr): L3 containers whose image lacks a directory they need fail to start; DIND_STORAGE=vfs works here",
            );
        }
    }
    let (data_root, where_) = match record {
        Some(record) => {
            record::check_restore(record, contents(&record.data_root), &record.data_root)?;
            let placement = facts.placement(&paths.docker, &paths.live_file());
            let why = placement::data_root_reason(&record.data_root, &paths.docker, &placement);
            (
                record.data_root.clone(),
                format!("{why} (recorded at setup)"),
            )
        }
        None => first_data_root(paths, facts)?,
    };
    make_dir(&data_root)?;
    let runtimes = data_root.join("runtimes");
    let root_type = facts.mount_at(Path::new("/")).map(|m| m.fs_type.as_str());
    if runtimes.is_dir() && root_type == Some("fuse.fuse-overlayfs") {
        warn(&format!(
            "{} came with this image (a commit without a quiesce, by a 40-dockerd.sh older than the one that removes it): on this L1 (fuse-overlayfs) dockerd will fail to start ('rename .../gen-runtimes... .../runtimes: file exists'); restore an image committed after a quiesce (dind-init snapshot)",
            runtimes.display()
        ));
    }
    remove_scratch(&data_root)?;
    say(&format!(
        "inner engine data: {}, plain files, {} driver: {where_}",
        data_root.display(),
        mode.driver()
    ));
    Ok(data_root)
}

/// The first boot's data root, and why there.
fn first_data_root(paths: &Paths, facts: &Facts) -> Result<(PathBuf, String), String> {
    let placement = facts.placement(&paths.docker, &paths.live_file());
    let data_root = match placement {
        Placement::Uncommitted { .. } => paths.state.join("docker"),
        _ => paths.docker.clone(),
    };
    let mut where_ = placement::data_root_reason(&data_root, &paths.docker, &placement);
    if data_root == paths.docker {
        return Ok((data_root, where_));
    }
    // An image committed before the volume was declared: the engine copied
    // its data into the new volume; copy it where a commit stores it. A
    // copy cut short is removed and made again, never nested.
    if !data_root.exists() && contents(&paths.docker) == Contents::Present {
        let copy = paths.state.join("docker.new");
        remove_tree(&copy)?;
        make_dir(&copy)?;
        let source = paths.docker.join(".");
        tool::run(
            "copying the inner engine's data out of the volume",
            "cp",
            &["-a".as_ref(), source.as_os_str(), copy.as_os_str()],
        )?;
        nix::unistd::sync();
        files::rename_durably(&copy, &data_root)?;
        where_.push_str(" (its data copied here)");
    }
    Ok((data_root, where_))
}

/// dockerd renames DATA_ROOT/runtimes and DATA_ROOT/tmp at start; from an
/// image's lower layer the L1's overlay cannot ("invalid cross-device
/// link"). Both are scratch: removed at stop (not committed) and at start.
fn remove_scratch(data_root: &Path) -> Result<(), String> {
    remove_tree(&data_root.join("runtimes"))?;
    remove_tree(&data_root.join("tmp"))
}

/// The volume that holds the live file: `paths.live` when it is one, else
/// the volume at /var/lib/docker (docker:dind declares that one),
/// bind-mounted at `paths.live` first.
fn require_volume(paths: &Paths, facts: &Facts) -> Result<(), String> {
    let live_file = paths.live_file();
    if matches!(
        facts.placement(&paths.live, &live_file),
        Placement::Uncommitted { .. }
    ) {
        return Ok(());
    }
    if facts.placement(&paths.docker, &live_file)
        == (Placement::Uncommitted {
            mount_point: paths.docker.clone(),
        })
    {
        let inside = paths.docker.join(".dind-storage-live");
        make_dir(&inside)?;
        make_dir(&paths.live)?;
        tool::run(
            "binding the volume for the live file",
            "mount",
            &[
                "--bind".as_ref(),
                inside.as_os_str(),
                paths.live.as_os_str(),
            ],
        )?;
        return Ok(());
    }
    Err(format!(
        "{} is not a volume: the L2 image must declare VOLUME {} (docker/dind/l2/Dockerfile) or VOLUME {}, or run with -v {}",
        paths.live.display(),
        paths.live.display(),
        paths.docker.display(),
        paths.live.display()
    ))
}

/// Holds an exclusive flock on the volume's lock file while alive, so two
/// starts on one volume decide ownership one after the other.
fn lock_volume(paths: &Paths) -> Result<nix::fcntl::Flock<fs::File>, String> {
    let path = paths.live.join("lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|error| format!("opening {} failed: {error}", path.display()))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| format!("locking {} failed: {errno}", path.display()))
}

fn mount_live(file: &Path, paths: &Paths) -> Result<(), String> {
    make_dir(&paths.docker)?;
    // -o loop sets autoclear: the loop device goes with the mount, even if
    // the container dies without a stop. A few tries: another L2 may take
    // the free device loop-control named first.
    let mut last = String::new();
    for _ in 0..5 {
        match tool::run(
            &format!(
                "mounting {} on {} (no free loop device? see losetup -a on the host)",
                file.display(),
                paths.docker.display()
            ),
            "mount",
            &[
                "-t".as_ref(),
                "ext4".as_ref(),
                "-o".as_ref(),
                "loop,noatime".as_ref(),
                file.as_os_str(),
                paths.docker.as_os_str(),
            ],
        ) {
            Ok(_) => return Ok(()),
            Err(error) => last = error,
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    Err(last)
}

fn size() -> Result<u64, String> {
    ext4::parse_size(&std::env::var("DIND_STORAGE_SIZE").unwrap_or_else(|_| "16G".to_string()))
}

/// This container's identity (see [`ownership::identity`]).
fn identity(mounts: &[Mount]) -> String {
    ownership::identity(
        mounts,
        &fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default(),
    )
}

/// The loop mode's start.
fn start_loop(paths: &Paths, facts: &Facts, record: Option<&Record>) -> Result<PathBuf, String> {
    require_volume(paths, facts)?;
    let facts = Facts::gather()?;
    loop_nodes()?;
    let _lock = lock_volume(paths)?;
    super::save::recover_journal(paths)?;
    let live_file = paths.live_file();
    let ours = identity(&facts.mounts);
    let owner = files::read_optional(&paths.owner())?;
    match ownership::decide(live_file.exists(), owner.as_deref(), &ours) {
        Ownership::Foreign(line) => return Err(line),
        Ownership::Ours if facts.our_loop_mounted(paths) => {
            tool::run(
                "making the inner engine's file system writable again",
                "mount",
                &[
                    "-o".as_ref(),
                    "remount,rw".as_ref(),
                    paths.docker.as_os_str(),
                ],
            )?;
            say(&format!(
                "inner engine data: {} still mounted from {} (the last stop did not finish): running on it, the newest state; the saved copy in {} is older",
                paths.docker.display(),
                live_file.display(),
                paths.state.display()
            ));
            return Ok(paths.docker.clone());
        }
        Ownership::Ours => {
            ext4::check(&live_file)?;
            mount_live(&live_file, paths)?;
            say(&format!(
                "inner engine data: {} was left by a stop or boot that did not finish: running on it, the newest state; the saved copy in {} is older",
                live_file.display(),
                paths.state.display()
            ));
            return Ok(paths.docker.clone());
        }
        Ownership::Free => {}
    }
    if let Some(mount) = facts
        .mount_at(&paths.docker)
        .filter(|m| placement::is_whole_loop_mount(m))
    {
        return Err(format!(
            "{} is already a loop mount ({}) that is not this container's live file: unmount it, or run the L2 without a loop-backed mount there",
            paths.docker.display(),
            mount.source
        ));
    }
    let saved = paths.saved();
    if record.is_some_and(|r| r.saved) && !saved.exists() {
        return Err(format!(
            "the saved copy of the inner engine, {}, is missing, but this image's record says a stop saved it: the image was committed without it; an engine started now would be empty. Restore an image committed after a quiesce, or prepare it again",
            saved.display()
        ));
    }
    let mut new = live_file.as_os_str().to_owned();
    new.push(".new");
    let new = PathBuf::from(new);
    let size = size()?;
    if saved.exists() {
        // The committed copy stays untouched; the live copy is grown to the
        // full size and gets its name only when complete.
        ext4::copy(
            &format!(
                "copying {} to the volume failed (the volume full?)",
                saved.display()
            ),
            &saved,
            &new,
        )?;
        fault::point("start.live-copied");
        ext4::set_length(&new, size, true)?;
        ext4::check(&new)?;
        ext4::grow(&new)?;
    } else {
        ext4::create(&new, size)?;
    }
    files::sync_file(&new)?;
    files::write_atomic(&paths.owner(), &format!("{ours}\n"))?;
    fault::point("start.owner-written");
    files::rename_durably(&new, &live_file)?;
    mount_live(&live_file, paths)?;
    fault::point("start.mounted");
    if saved.exists() {
        say(&format!(
            "copied {} ({} MB) to the volume",
            saved.display(),
            fs::metadata(&saved).map(|m| m.len() >> 20).unwrap_or(0)
        ));
    } else {
        say(&format!("created {} (ext4, sparse)", live_file.display()));
    }
    say(&format!(
        "inner engine data: {} on the ext4 file {} (in a volume: not committed), copied whole to {} (committed) at every stop",
        paths.docker.display(),
        live_file.display(),
        saved.display()
    ));
    Ok(paths.docker.clone())
}

/// `dind-init storage stop`.
pub fn stop(paths: &Paths) -> Result<(), String> {
    let facts = Facts::gather()?;
    let Some(mut record) = read_record(paths)? else {
        say("no storage record: the storage step never started here; nothing to save");
        return Ok(());
    };
    let plain_root = (record.mode != Mode::Loop).then(|| record.data_root.clone());
    let blocker = commit_blocker(&facts, paths, plain_root.as_deref());
    match record.mode {
        Mode::Vfs | Mode::FuseOverlayfs => {
            remove_scratch(&record.data_root)?;
            let saved = contents(&record.data_root) == Contents::Present;
            if saved != record.saved {
                record.saved = saved;
                files::write_atomic(&paths.record(), &record.render())?;
            }
            say(&format!(
                "{}: plain files; dockerd's scratch directories removed",
                record.data_root.display()
            ));
        }
        Mode::Loop => stop_loop(paths, &facts, &mut record)?,
    }
    match blocker {
        Some(blocker) => Err(format!("not commit-safe: {blocker}")),
        None => Ok(()),
    }
}

/// Saves the live file to docker.img under the journal: the copy is made
/// beside it, checked, shrunk and fsynced, then renamed over it; the live
/// file is removed only once the new name is durable.
fn stop_loop(paths: &Paths, facts: &Facts, record: &mut Record) -> Result<(), String> {
    let live_file = paths.live_file();
    let mounted = facts.our_loop_mounted(paths);
    if !mounted {
        if let Some(mount) = facts
            .mount_at(&paths.docker)
            .filter(|m| placement::is_whole_loop_mount(m))
        {
            return Err(format!(
                "{} is a loop mount ({}) that is not this container's live file: nothing of it is saved",
                paths.docker.display(),
                mount.source
            ));
        }
        if !live_file.exists() {
            say("no live file: nothing to save");
            return Ok(());
        }
        // A stop after a refused start must not save another container's file.
        let owner = files::read_optional(&paths.owner())?;
        if let Ownership::Foreign(line) =
            ownership::decide(true, owner.as_deref(), &identity(&facts.mounts))
        {
            return Err(format!("{line}; nothing of it is saved here"));
        }
    }
    if mounted {
        // Read-only first: that fails while anything still writes, and what
        // is saved next is what the file system holds on disk.
        tool::run(
            &format!(
                "{} is still open for writing (is dockerd stopped?): its data is not saved; the live file stays in {}",
                paths.docker.display(),
                paths.live.display()
            ),
            "mount",
            &[
                "-o".as_ref(),
                "remount,ro".as_ref(),
                paths.docker.as_os_str(),
            ],
        )?;
        fault::point("stop.frozen");
    }
    let saved = paths.saved();
    say(&format!(
        "saving {} to {}",
        live_file.display(),
        saved.display()
    ));
    let make_copy = |from: &Path, to: &Path| {
        ext4::copy(
            &format!(
                "copying {} to {} failed (disk full?); the saved copy is the previous one, the live file stays for the next start",
                from.display(),
                to.display()
            ),
            from,
            to,
        )?;
        ext4::check(to)?;
        ext4::shrink(to)
    };
    let crash = |point: &str| {
        fault::point(point);
        false
    };
    super::save::save_under_journal(paths, record, &make_copy, &crash)?;
    if mounted {
        // Lazily when a process (a `docker exec` shell) still sits in it: the
        // saved copy is complete either way.
        if tool::run("unmounting", "umount", &[paths.docker.as_os_str()]).is_err() {
            tool::run(
                "unmounting lazily",
                "umount",
                &["-l".as_ref(), paths.docker.as_os_str()],
            )?;
            say(&format!(
                "{} was busy: detached lazily (the saved copy is complete)",
                paths.docker.display()
            ));
        }
    }
    fault::point("stop.unmounted");
    // Under the start's lock: a start elsewhere on this volume either sees
    // our live file and owner, or neither, never our owner record removed
    // after it wrote its own.
    let _lock = lock_volume(paths)?;
    files::remove_durably(&live_file)?;
    fault::point("stop.live-removed");
    files::remove_durably(&paths.owner())?;
    say(&format!(
        "{} unmounted; {} shrunk to {} MB",
        paths.docker.display(),
        saved.display(),
        fs::metadata(&saved).map(|m| m.len() >> 20).unwrap_or(0)
    ));
    Ok(())
}

/// `dind-init storage status`: the record, the journal, the live file's owner.
pub fn status(paths: &Paths) -> Result<(), String> {
    match read_record(paths)? {
        Some(record) => print!("{}", record.render()),
        None => println!("record: none (the storage step has not started here)"),
    }
    let journal = files::read_optional(&paths.journal())?;
    println!("journal={}", journal.as_deref().map_or("none", str::trim));
    let owner = files::read_optional(&paths.owner())?;
    println!(
        "live_file={}",
        if paths.live_file().exists() {
            "present"
        } else {
            "none"
        }
    );
    println!("owner={}", owner.as_deref().map_or("none", str::trim));
    Ok(())
}
