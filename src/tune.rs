//! `sluice tune check`: the host settings a thread-per-core broker doing
//! O_DIRECT and io_uring I/O depends on, each read from /proc, /sys, the
//! process's rlimits or a small probe, printed with the recommended value and
//! why. `tuning/README.md` has the commands to change them.
//!
//! Nothing is changed unless `--apply` is given; then, as root, only the
//! values marked `change` that are safe to write at run time (CPU governor,
//! transparent huge pages, the data device's I/O scheduler, listen backlogs)
//! are written. Boot parameters, rlimits and io_uring policy are reported only.
//!
//! A file that cannot be read is reported as "unknown", never a failure.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::constants::{DMA_ALIGNMENT_BYTES, IO_MEMORY_BYTES_PER_SHARD};

/// Locked memory allowed beyond the shards' registered I/O buffers (rings, probes).
const MEMLOCK_HEADROOM_BYTES: u64 = 64 * 1024 * 1024;
/// Open files recommended: a connection, a segment and its index files each hold one.
const NOFILE_RECOMMENDED_MIN: u64 = 65_536;
/// Listen and SYN backlog recommended so that bursts of client connections are not dropped.
const LISTEN_BACKLOG_RECOMMENDED_MIN: u64 = 4096;
/// Socket busy-poll budget recommended where latency matters more than CPU.
const BUSY_POLL_US_RECOMMENDED: u64 = 50;
/// Submission queue entries of the ring created to probe io_uring.
const IO_URING_PROBE_ENTRIES: u32 = 4;
/// Size of the kernel's `struct io_uring_params` (stable since 5.1).
const IO_URING_PARAMS_BYTES: usize = 120;
/// Oldest kernel glommio runs on.
const KERNEL_VERSION_MIN: (u32, u32) = (5, 8);
/// Cores from which one is best left to interrupts and the OS instead of a shard.
const CORES_RESERVE_ONE_MIN: usize = 4;
/// Bit of `CAP_IPC_LOCK` in the capability sets of /proc/self/status.
const CAP_IPC_LOCK_BIT: u32 = 14;

/// Subcommands of `sluice tune`.
#[derive(Debug, clap::Subcommand)]
pub enum TuneCommand {
    /// Report the host settings the broker depends on: current value, recommended value, and why.
    Check(TuneCheckArgs),
}

/// Flags of `sluice tune check`.
#[derive(Debug, Clone, clap::Args)]
pub struct TuneCheckArgs {
    /// Data directory whose file system and device are checked (as `sluice serve --data-dir`).
    #[arg(long, env = "SLUICE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Shards the broker will run; defaults to the online cores.
    #[arg(long, env = "SLUICE_SHARDS")]
    pub shards: Option<usize>,
    /// As root, write the safe run-time values marked `change` (CPU governor,
    /// transparent huge pages, I/O scheduler, listen backlogs). Nothing else is changed.
    #[arg(long)]
    pub apply: bool,
}

impl TuneCheckArgs {
    /// The options of a check, with the shard count defaulted as `sluice serve` does.
    pub fn options(&self) -> CheckOptions {
        let online = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        CheckOptions { data_dir: self.data_dir.clone(), shards: self.shards.unwrap_or(online), apply: self.apply }
    }
}

/// What `sluice tune check` should look at.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub data_dir: PathBuf,
    /// Shards the broker will run; sizes the locked-memory recommendation.
    pub shards: usize,
    /// Write the safe values marked `change` (root only).
    pub apply: bool,
}

/// How a setting compares with the recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Ok,
    /// Worth changing on any host running Sluice.
    Change,
    /// Worth changing on a dedicated, latency-critical host; costs something elsewhere.
    Consider,
    /// Reported for information; no single right value.
    Info,
    /// The setting could not be read.
    Unknown,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Ok => "ok",
            Verdict::Change => "change",
            Verdict::Consider => "consider",
            Verdict::Info => "info",
            Verdict::Unknown => "unknown",
        })
    }
}

/// One setting: what it is, what it should be, and why.
#[derive(Debug, Clone)]
pub struct Finding {
    pub name: String,
    pub current: String,
    pub recommended: String,
    pub why: String,
    pub verdict: Verdict,
    /// Files and values `--apply` writes for a `Change` verdict.
    pub fix: Vec<(PathBuf, String)>,
}

impl Finding {
    fn new(
        name: &str,
        current: impl Into<String>,
        recommended: impl Into<String>,
        why: &str,
        verdict: Verdict,
    ) -> Self {
        Finding {
            name: name.to_string(),
            current: current.into(),
            recommended: recommended.into(),
            why: why.to_string(),
            verdict,
            fix: Vec::new(),
        }
    }

    fn with_fix(mut self, fix: Vec<(PathBuf, String)>) -> Self {
        self.fix = fix;
        self
    }
}

const UNKNOWN: &str = "unknown";

fn read_trimmed(path: impl AsRef<Path>) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

fn read_u64(path: impl AsRef<Path>) -> Option<u64> {
    read_trimmed(path)?.parse().ok()
}

/// The selected value of a sysfs choice list such as `always [madvise] never`.
fn selected(choices: &str) -> Option<&str> {
    let start = choices.find('[')? + 1;
    let end = start + choices[start..].find(']')?;
    Some(&choices[start..end])
}

fn format_bytes(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Runs every check, prints the report, and applies fixes if asked. Returns
/// the findings (for callers that want to act on them).
pub fn run_check(options: &CheckOptions) -> Vec<Finding> {
    let target = Target::resolve(&options.data_dir);
    let findings = check_all(options, &target);
    let mut out = std::io::stdout().lock();
    let _ = write_report(&mut out, &target, &findings);
    if options.apply {
        let _ = apply(&mut out, &findings);
    } else {
        let _ = writeln!(out, "Nothing was changed. As root, `sluice tune check --apply` writes the values marked `change` that have a safe run-time setting; see tuning/README.md for the rest.");
    }
    findings
}

/// Every check, in the order of tuning/README.md.
pub fn check_all(options: &CheckOptions, target: &Target) -> Vec<Finding> {
    let mut findings = vec![kernel_version(), shards(options.shards), cpu_governor()];
    findings.extend(boot_isolation());
    findings.push(irqbalance());
    findings.extend(transparent_huge_pages());
    findings.push(filesystem(target));
    findings.push(o_direct(target));
    findings.extend(block_device(target));
    findings.push(memlock(options.shards));
    findings.push(nofile());
    findings.push(io_uring_disabled());
    findings.push(io_uring_probe());
    findings.extend(network());
    findings
}

/// The data directory, or its nearest existing ancestor when it does not exist yet.
#[derive(Debug, Clone)]
pub struct Target {
    pub data_dir: PathBuf,
    /// The directory actually inspected.
    pub dir: Option<PathBuf>,
}

impl Target {
    pub fn resolve(data_dir: &Path) -> Target {
        let absolute = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
        let dir = absolute.ancestors().find(|p| p.is_dir()).map(Path::to_path_buf);
        Target { data_dir: absolute, dir }
    }
}

fn write_report(out: &mut impl std::io::Write, target: &Target, findings: &[Finding]) -> std::io::Result<()> {
    writeln!(out, "sluice tune check")?;
    writeln!(out, "data directory: {}", target.data_dir.display())?;
    match &target.dir {
        Some(dir) if *dir != target.data_dir => {
            writeln!(out, "  (does not exist yet; its nearest existing parent {} is checked)", dir.display())?
        }
        Some(_) => {}
        None => writeln!(out, "  (neither it nor any parent exists; disk checks are unknown)")?,
    }
    writeln!(out)?;
    for f in findings {
        writeln!(out, "[{}] {}", f.verdict, f.name)?;
        writeln!(out, "    current:     {}", f.current)?;
        writeln!(out, "    recommended: {}", f.recommended)?;
        writeln!(out, "    why:         {}", f.why)?;
    }
    let count = |v: Verdict| findings.iter().filter(|f| f.verdict == v).count();
    writeln!(
        out,
        "\n{} ok, {} to change, {} to consider, {} for information, {} unknown.",
        count(Verdict::Ok),
        count(Verdict::Change),
        count(Verdict::Consider),
        count(Verdict::Info),
        count(Verdict::Unknown)
    )
}

fn apply(out: &mut impl std::io::Write, findings: &[Finding]) -> std::io::Result<()> {
    let fixes: Vec<&(PathBuf, String)> =
        findings.iter().filter(|f| f.verdict == Verdict::Change).flat_map(|f| f.fix.iter()).collect();
    if fixes.is_empty() {
        return writeln!(out, "--apply: nothing to write.");
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return writeln!(out, "--apply: not root, nothing was changed.");
    }
    for (path, value) in fixes {
        // Only kernel tunables, never anything else on the host.
        let tunable = path.starts_with("/sys/") || path.starts_with("/proc/sys/");
        assert!(tunable, "fixes write kernel tunables only: {}", path.display());
        match fs::write(path, value) {
            Ok(()) => writeln!(out, "--apply: wrote {value} to {}", path.display())?,
            Err(e) => writeln!(out, "--apply: could not write {value} to {}: {e}", path.display())?,
        }
    }
    writeln!(out, "--apply: run-time values do not survive a reboot; see tuning/README.md to make them permanent.")
}

fn kernel_version() -> Finding {
    let why = "glommio needs io_uring features of 5.8; newer kernels make io_uring and NVMe polling faster.";
    let minimum = format!("{}.{} or newer (6.x recommended)", KERNEL_VERSION_MIN.0, KERNEL_VERSION_MIN.1);
    let Some(release) = read_trimmed("/proc/sys/kernel/osrelease") else {
        return Finding::new("kernel", UNKNOWN, minimum, why, Verdict::Unknown);
    };
    let mut parts = release.split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse::<u32>().ok());
    let version = (parts.next(), parts.next());
    let verdict = match version {
        (Some(major), Some(minor)) if (major, minor) >= KERNEL_VERSION_MIN => Verdict::Ok,
        (Some(_), Some(_)) => Verdict::Change,
        _ => Verdict::Unknown,
    };
    Finding::new("kernel", release, minimum, why, verdict)
}

fn shards(shards: usize) -> Finding {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let recommended = if cores >= CORES_RESERVE_ONE_MIN {
        format!("{} (one per core, leaving core 0 to interrupts and the OS)", cores - 1)
    } else {
        format!("{cores} (one per core; too few cores to set one aside)")
    };
    Finding::new(
        "shards",
        format!("{shards} shard(s) on {cores} online core(s)"),
        recommended,
        "each shard is one executor pinned to one core; two shards on one core only add cross-shard hops.",
        Verdict::Info,
    )
}

fn cpu_dirs() -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir("/sys/devices/system/cpu") else { return Vec::new() };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            let name = name.as_bytes();
            name.len() > 3 && name.starts_with(b"cpu") && name[3..].iter().all(u8::is_ascii_digit)
        })
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}

fn cpu_governor() -> Finding {
    let why = "a shard's core idles between bursts; powersave-style governors then take time to ramp back up.";
    let paths: Vec<PathBuf> =
        cpu_dirs().into_iter().map(|d| d.join("cpufreq/scaling_governor")).filter(|p| p.exists()).collect();
    let governors: BTreeSet<String> = paths.iter().filter_map(read_trimmed).collect();
    if governors.is_empty() {
        return Finding::new(
            "cpu frequency governor",
            "unknown (no cpufreq: a virtual machine or a fixed-frequency CPU)",
            "performance",
            why,
            Verdict::Unknown,
        );
    }
    let current = governors.iter().cloned().collect::<Vec<_>>().join(", ");
    if governors.len() == 1 && governors.contains("performance") {
        return Finding::new("cpu frequency governor", current, "performance", why, Verdict::Ok);
    }
    let fix = paths.into_iter().map(|p| (p, "performance".to_string())).collect();
    Finding::new("cpu frequency governor", current, "performance", why, Verdict::Change).with_fix(fix)
}

fn boot_isolation() -> Vec<Finding> {
    let cmdline = read_trimmed("/proc/cmdline");
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    // With few cores every core runs a shard and none is left to isolate them from.
    let spare = cores >= CORES_RESERVE_ONE_MIN;
    let shard_cores = if spare {
        format!("the shards' cores, e.g. 1-{}", cores - 1)
    } else {
        "not needed: too few cores to set one aside".to_string()
    };
    let params = [
        ("isolcpus", "keeps the scheduler from placing other threads on the shards' cores (add managed_irq to move managed interrupts too)."),
        ("nohz_full", "stops the scheduler tick on a core running only its shard, removing a periodic interruption."),
        ("rcu_nocbs", "moves RCU callbacks off the shards' cores."),
    ];
    params
        .iter()
        .map(|(param, why)| {
            let name = format!("boot parameter {param}");
            let Some(cmdline) = &cmdline else {
                return Finding::new(&name, UNKNOWN, shard_cores.clone(), why, Verdict::Unknown);
            };
            let prefix = format!("{param}=");
            match cmdline.split_whitespace().find_map(|t| t.strip_prefix(prefix.as_str())) {
                Some(value) => Finding::new(&name, value, shard_cores.clone(), why, Verdict::Ok),
                None if spare => Finding::new(&name, "not set", shard_cores.clone(), why, Verdict::Consider),
                None => Finding::new(&name, "not set", shard_cores.clone(), why, Verdict::Ok),
            }
        })
        .collect()
}

/// The banned-CPU setting of a running irqbalance, if it can be read.
fn irqbalance_state() -> Option<Option<String>> {
    let entries = fs::read_dir("/proc").ok()?;
    for entry in entries.filter_map(|e| e.ok()) {
        let is_pid = entry.file_name().as_bytes().iter().all(u8::is_ascii_digit);
        if !is_pid || read_trimmed(entry.path().join("comm")).as_deref() != Some("irqbalance") {
            continue;
        }
        let environ = fs::read(entry.path().join("environ")).unwrap_or_default();
        let banned = environ.split(|b| *b == 0).find_map(|var| {
            let var = std::str::from_utf8(var).ok()?;
            var.strip_prefix("IRQBALANCE_BANNED_CPULIST=").or_else(|| var.strip_prefix("IRQBALANCE_BANNED_CPUS="))
        });
        return Some(banned.map(str::to_string));
    }
    None
}

fn irqbalance() -> Finding {
    let why = "an interrupt handled on a shard's core preempts that shard; network and NVMe interrupts belong on the other cores.";
    let recommended = "running with the shards' cores banned (IRQBALANCE_BANNED_CPULIST), or stopped with /proc/irq/*/smp_affinity_list set by hand";
    match irqbalance_state() {
        Some(Some(banned)) => {
            Finding::new("irqbalance", format!("running, banned CPUs {banned}"), recommended, why, Verdict::Ok)
        }
        Some(None) => Finding::new("irqbalance", "running, no CPUs banned", recommended, why, Verdict::Consider),
        None => Finding::new(
            "irqbalance",
            "not running (interrupts stay where /proc/irq/*/smp_affinity_list puts them)",
            recommended,
            why,
            Verdict::Info,
        ),
    }
}

fn transparent_huge_pages() -> Vec<Finding> {
    let why = "with `always`, page faults may stall a shard while the kernel compacts memory for a huge page; `madvise` leaves it to programs that ask.";
    ["enabled", "defrag"]
        .iter()
        .map(|knob| {
            let path = PathBuf::from(format!("/sys/kernel/mm/transparent_hugepage/{knob}"));
            let name = format!("transparent huge pages ({knob})");
            let Some(choices) = read_trimmed(&path) else {
                return Finding::new(&name, UNKNOWN, "madvise", why, Verdict::Unknown);
            };
            match selected(&choices) {
                Some(v @ ("madvise" | "never" | "defer+madvise")) => {
                    Finding::new(&name, v, "madvise", why, Verdict::Ok)
                }
                Some(v) => {
                    let fix = choices.contains("madvise").then(|| (path.clone(), "madvise".to_string()));
                    Finding::new(&name, v, "madvise", why, Verdict::Change).with_fix(fix.into_iter().collect())
                }
                None => Finding::new(&name, choices.clone(), "madvise", why, Verdict::Unknown),
            }
        })
        .collect()
}

/// `statfs` magic numbers of the file systems worth naming.
fn filesystem_name(magic: u64) -> &'static str {
    match magic {
        0xEF53 => "ext4",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x0102_1994 => "tmpfs",
        0x794C_7630 => "overlayfs",
        0x6969 => "nfs",
        0x2FC1_2FC1 => "zfs",
        0xF2F5_2010 => "f2fs",
        0xFF53_4D42 => "cifs",
        0x6573_5546 => "fuse",
        _ => "other",
    }
}

/// The data directory's file system: its name and `statfs` magic.
pub fn statfs_magic(dir: &Path) -> std::io::Result<u64> {
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `path` is a NUL-terminated string and `stat` a zeroed out-parameter.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(path.as_ptr(), &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stat.f_type as u64)
}

fn filesystem(target: &Target) -> Finding {
    let why = "segments are written with O_DIRECT in 4 KiB blocks and made durable with fdatasync: XFS and ext4 do both well on a local device; tmpfs is not durable, network and overlay file systems add latency or refuse O_DIRECT.";
    let recommended = "xfs or ext4 on a local NVMe device";
    let Some(dir) = &target.dir else { return Finding::new("filesystem", UNKNOWN, recommended, why, Verdict::Unknown) };
    match statfs_magic(dir) {
        Err(e) => Finding::new("filesystem", format!("unknown ({e})"), recommended, why, Verdict::Unknown),
        Ok(magic) => {
            let name = filesystem_name(magic);
            let verdict = match name {
                "ext4" | "xfs" => Verdict::Ok,
                "tmpfs" | "overlayfs" | "nfs" | "cifs" | "fuse" => Verdict::Change,
                _ => Verdict::Consider,
            };
            Finding::new("filesystem", format!("{name} (magic {magic:#x})"), recommended, why, verdict)
        }
    }
}

/// Writes one aligned block with O_DIRECT to a new file in `dir`, fdatasyncs
/// it, and removes the file whatever happened.
pub fn probe_o_direct(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(format!(".sluice-tune-o-direct-{}", std::process::id()));
    let result = write_aligned_block(&path);
    let removed = fs::remove_file(&path);
    match (result, removed) {
        (Err(e), _) => Err(e),
        (Ok(()), Err(e)) => Err(e),
        (Ok(()), Ok(())) => Ok(()),
    }
}

fn write_aligned_block(path: &Path) -> std::io::Result<()> {
    let file =
        fs::OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_DIRECT).open(path)?;
    let block_bytes = DMA_ALIGNMENT_BYTES as usize;
    let layout = std::alloc::Layout::from_size_align(block_bytes, block_bytes).expect("alignment is a power of two");
    // SAFETY: the layout has a non-zero size; the buffer is freed below on every path.
    let buf = unsafe { std::alloc::alloc_zeroed(layout) };
    if buf.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    // SAFETY: `buf` points to `block_bytes` initialised (zeroed) bytes owned here.
    let block = unsafe { std::slice::from_raw_parts(buf, block_bytes) };
    let written = std::os::unix::fs::FileExt::write_at(&file, block, 0);
    // SAFETY: allocated above with the same layout, and `block` is not used after this.
    unsafe { std::alloc::dealloc(buf, layout) };
    match written? {
        n if n == block_bytes => file.sync_data(),
        n => Err(std::io::Error::other(format!("short O_DIRECT write: {n} of {block_bytes} bytes"))),
    }
}

fn o_direct(target: &Target) -> Finding {
    let why = "every segment write and read bypasses the page cache; a file system that refuses O_DIRECT or 4 KiB alignment cannot hold Sluice's data.";
    let recommended = format!("works ({DMA_ALIGNMENT_BYTES}-byte aligned write and fdatasync)");
    let Some(dir) = &target.dir else {
        return Finding::new("O_DIRECT write", UNKNOWN, recommended, why, Verdict::Unknown);
    };
    match probe_o_direct(dir) {
        Ok(()) => Finding::new("O_DIRECT write", recommended.clone(), recommended, why, Verdict::Ok),
        Err(e) => Finding::new("O_DIRECT write", format!("fails: {e}"), recommended, why, Verdict::Change),
    }
}

/// The sysfs directory of the whole block device holding `dir`.
fn block_device_dir(dir: &Path) -> Result<PathBuf, String> {
    let dev = fs::metadata(dir).map_err(|e| format!("unknown ({e})"))?.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let link = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    let device = fs::canonicalize(&link)
        .map_err(|_| format!("unknown (device {major}:{minor} is not a block device: tmpfs, overlay or network)"))?;
    // A partition's queue settings are its disk's.
    if device.join("partition").exists() {
        return device.parent().map(Path::to_path_buf).ok_or_else(|| UNKNOWN.to_string());
    }
    Ok(device)
}

fn block_device(target: &Target) -> Vec<Finding> {
    let device = match target.dir.as_deref().map(block_device_dir) {
        Some(Ok(device)) => device,
        Some(Err(reason)) => {
            let why = "the scheduler, polling and write cache of the data directory's device shape write latency.";
            return vec![Finding::new("data device", reason, "a local NVMe device", why, Verdict::Unknown)];
        }
        None => {
            let why = "the data directory's device could not be found.";
            return vec![Finding::new("data device", UNKNOWN, "a local NVMe device", why, Verdict::Unknown)];
        }
    };
    let name = device.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| UNKNOWN.into());
    let queue = device.join("queue");
    vec![
        Finding::new(
            "data device",
            name.clone(),
            "a local NVMe device",
            "the device holding the data directory; the rows below are its queue settings.",
            Verdict::Info,
        ),
        scheduler(&name, &queue),
        io_poll(&name, &queue),
        write_cache(&name, &queue),
    ]
}

fn scheduler(device: &str, queue: &Path) -> Finding {
    let name = format!("{device} I/O scheduler");
    let rotational = read_u64(queue.join("rotational")) == Some(1);
    let (recommended, why) = if rotational {
        ("mq-deadline", "a rotating disk benefits from request ordering; mq-deadline bounds each request's wait.")
    } else {
        ("none", "Sluice already writes large sequential blocks; on flash a scheduler only adds per-request CPU and latency.")
    };
    let path = queue.join("scheduler");
    let Some(choices) = read_trimmed(&path) else {
        return Finding::new(&name, UNKNOWN, recommended, why, Verdict::Unknown);
    };
    match selected(&choices).or(Some(choices.as_str()).filter(|c| !c.contains(' '))) {
        Some(current) if current == recommended => Finding::new(&name, current, recommended, why, Verdict::Ok),
        Some(current) => {
            let settable = choices.split_whitespace().any(|c| c.trim_matches(['[', ']']) == recommended);
            let fix = settable.then(|| (path.clone(), recommended.to_string()));
            Finding::new(&name, current, recommended, why, Verdict::Change).with_fix(fix.into_iter().collect())
        }
        None => Finding::new(&name, choices.clone(), recommended, why, Verdict::Unknown),
    }
}

fn io_poll(device: &str, queue: &Path) -> Finding {
    let name = format!("{device} polled I/O (io_poll)");
    let why = "glommio submits reads through a polled io_uring on devices that support it, taking interrupts out of the read path; NVMe needs poll queues (nvme.poll_queues) for that.";
    let poll_queues = read_u64("/sys/module/nvme/parameters/poll_queues");
    let current = match (read_u64(queue.join("io_poll")), poll_queues) {
        (None, _) => UNKNOWN.to_string(),
        (Some(v), Some(q)) if device.starts_with("nvme") => format!("{v} (nvme.poll_queues={q})"),
        (Some(v), _) => v.to_string(),
    };
    if !device.starts_with("nvme") {
        return Finding::new(&name, current, "n/a (polling applies to NVMe devices)", why, Verdict::Info);
    }
    let recommended = "1, with nvme.poll_queues set to the number of shards";
    let verdict = match (read_u64(queue.join("io_poll")), poll_queues) {
        (Some(1), Some(q)) if q > 0 => Verdict::Ok,
        (None, _) => Verdict::Unknown,
        _ => Verdict::Consider,
    };
    Finding::new(&name, current, recommended, why, verdict)
}

fn write_cache(device: &str, queue: &Path) -> Finding {
    let name = format!("{device} write cache");
    let current = read_trimmed(queue.join("write_cache")).unwrap_or_else(|| UNKNOWN.into());
    let verdict = if current == UNKNOWN { Verdict::Unknown } else { Verdict::Info };
    Finding::new(
        &name,
        current,
        "write through, or write back on a device that honours flushes (power-loss protection)",
        "acks=all waits for fdatasync; a volatile cache that ignores flushes can lose acknowledged records on power loss.",
        verdict,
    )
}

fn rlimit(resource: libc::__rlimit_resource_t) -> Option<libc::rlimit> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid out-parameter.
    (unsafe { libc::getrlimit(resource, &mut limit) } == 0).then_some(limit)
}

fn has_cap_ipc_lock() -> bool {
    let Some(status) = read_trimmed("/proc/self/status") else { return false };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_IPC_LOCK_BIT) != 0)
}

fn memlock(shards: usize) -> Finding {
    let needed_bytes = shards as u64 * IO_MEMORY_BYTES_PER_SHARD as u64 + MEMLOCK_HEADROOM_BYTES;
    let recommended = format!(
        "at least {} ({shards} shards x {}, plus headroom), or unlimited",
        format_bytes(needed_bytes),
        format_bytes(IO_MEMORY_BYTES_PER_SHARD as u64)
    );
    let why = "each shard registers its I/O buffers with io_uring, which locks them in memory; without CAP_IPC_LOCK that counts against RLIMIT_MEMLOCK.";
    let Some(limit) = rlimit(libc::RLIMIT_MEMLOCK) else {
        return Finding::new("locked memory (RLIMIT_MEMLOCK)", UNKNOWN, recommended, why, Verdict::Unknown);
    };
    let current =
        if limit.rlim_cur == libc::RLIM_INFINITY { "unlimited".to_string() } else { format_bytes(limit.rlim_cur) };
    let cap = has_cap_ipc_lock();
    let current = if cap { format!("{current} (CAP_IPC_LOCK held: not enforced)") } else { current };
    let verdict = if cap || limit.rlim_cur == libc::RLIM_INFINITY || limit.rlim_cur >= needed_bytes {
        Verdict::Ok
    } else {
        Verdict::Change
    };
    Finding::new("locked memory (RLIMIT_MEMLOCK)", current, recommended, why, verdict)
}

fn nofile() -> Finding {
    let recommended = format!("at least {NOFILE_RECOMMENDED_MIN}");
    let why = "every client connection holds a descriptor, and every partition holds its active segment open.";
    let Some(limit) = rlimit(libc::RLIMIT_NOFILE) else {
        return Finding::new("open files (RLIMIT_NOFILE)", UNKNOWN, recommended, why, Verdict::Unknown);
    };
    let unlimited = limit.rlim_cur == libc::RLIM_INFINITY;
    let current = if unlimited { "unlimited".to_string() } else { limit.rlim_cur.to_string() };
    let verdict = if unlimited || limit.rlim_cur >= NOFILE_RECOMMENDED_MIN { Verdict::Ok } else { Verdict::Change };
    Finding::new("open files (RLIMIT_NOFILE)", current, recommended, why, verdict)
}

fn io_uring_disabled() -> Finding {
    let why = "1 limits io_uring to privileged processes and 2 turns it off; Sluice does all its I/O through io_uring.";
    match read_u64("/proc/sys/kernel/io_uring_disabled") {
        Some(0) => Finding::new("kernel.io_uring_disabled", "0", "0", why, Verdict::Ok),
        Some(v) => Finding::new("kernel.io_uring_disabled", v.to_string(), "0", why, Verdict::Change),
        None if std::path::Path::new("/proc/sys/kernel").exists() => Finding::new(
            "kernel.io_uring_disabled",
            "absent (kernels before 6.6 have no such switch)",
            "0",
            why,
            Verdict::Ok,
        ),
        None => Finding::new("kernel.io_uring_disabled", UNKNOWN, "0", why, Verdict::Unknown),
    }
}

/// Creates and closes a small io_uring: whether this process may use io_uring at all.
pub fn probe_io_uring() -> std::io::Result<()> {
    let mut params = [0u8; IO_URING_PARAMS_BYTES];
    // SAFETY: io_uring_setup reads and writes `struct io_uring_params`, which `params` holds zeroed.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, IO_URING_PROBE_ENTRIES, params.as_mut_ptr()) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is the ring just created and owned by nobody else.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}

fn io_uring_probe() -> Finding {
    let why = "the broker cannot start without io_uring; containers also need io_uring_setup and io_uring_enter allowed by seccomp.";
    match probe_io_uring() {
        Ok(()) => Finding::new("io_uring", "available (io_uring_setup succeeded)", "available", why, Verdict::Ok),
        Err(e) => {
            let reason = match e.raw_os_error() {
                Some(libc::ENOSYS) => "kernel built without io_uring",
                Some(libc::EPERM) => "not permitted: kernel.io_uring_disabled or a seccomp profile",
                Some(libc::ENOMEM) => "out of locked memory: raise RLIMIT_MEMLOCK",
                _ => "refused",
            };
            Finding::new("io_uring", format!("unavailable: {reason} ({e})"), "available", why, Verdict::Change)
        }
    }
}

fn sysctl_at_least(key: &str, minimum: u64, why: &str, verdict_below: Verdict, fix: bool) -> Finding {
    let path = PathBuf::from(format!("/proc/sys/{}", key.replace('.', "/")));
    let recommended = format!("at least {minimum}");
    match read_u64(&path) {
        None => Finding::new(key, UNKNOWN, recommended, why, Verdict::Unknown),
        Some(v) if v >= minimum => Finding::new(key, v.to_string(), recommended, why, Verdict::Ok),
        Some(v) => {
            let fixes = if fix { vec![(path, minimum.to_string())] } else { Vec::new() };
            Finding::new(key, v.to_string(), recommended, why, verdict_below).with_fix(fixes)
        }
    }
}

fn network() -> Vec<Finding> {
    vec![
        sysctl_at_least(
            "net.core.somaxconn",
            LISTEN_BACKLOG_RECOMMENDED_MIN,
            "caps each shard's listen backlog; a burst of client connects beyond it is dropped and retried seconds later.",
            Verdict::Change,
            true,
        ),
        sysctl_at_least(
            "net.ipv4.tcp_max_syn_backlog",
            LISTEN_BACKLOG_RECOMMENDED_MIN,
            "half-open connections queued per listener during a connect burst.",
            Verdict::Change,
            true,
        ),
        sysctl_at_least(
            "net.core.busy_poll",
            BUSY_POLL_US_RECOMMENDED,
            "microseconds poll/epoll spin on the NIC queue before sleeping: lower network latency for CPU; only on dedicated hosts.",
            Verdict::Consider,
            false,
        ),
        sysctl_at_least(
            "net.core.busy_read",
            BUSY_POLL_US_RECOMMENDED,
            "microseconds a socket read spins on the NIC queue before sleeping: lower network latency for CPU; only on dedicated hosts.",
            Verdict::Consider,
            false,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selected_reads_sysfs_choice_lists() {
        assert_eq!(selected("always [madvise] never"), Some("madvise"));
        assert_eq!(selected("[none] mq-deadline kyber"), Some("none"));
        assert_eq!(selected("none"), None);
        assert_eq!(selected("[broken"), None);
    }

    #[test]
    fn missing_data_dir_checks_its_nearest_parent() {
        let target = Target::resolve(Path::new("/nonexistent-sluice-dir/a/b"));
        assert_eq!(target.dir.as_deref(), Some(Path::new("/")));
        assert!(target.data_dir.ends_with("a/b"));
    }

    #[test]
    fn filesystem_names() {
        assert_eq!(filesystem_name(0xEF53), "ext4");
        assert_eq!(filesystem_name(0x5846_5342), "xfs");
        assert_eq!(filesystem_name(1), "other");
    }
}
