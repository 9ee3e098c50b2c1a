//! Starting and stopping the broker: one pinned glommio executor per shard,
//! the channel mesh between them, and the clean-shutdown marker that tells
//! the next start whether indexes can be trusted.

use std::os::unix::thread::JoinHandleExt;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorPoolBuilder, PoolPlacement};

use crate::config::BrokerConfig;
use crate::constants::{IO_MEMORY_BYTES_PER_SHARD, MESH_CHANNEL_DEPTH};
use crate::metadata::controller::{CatalogSink, Controller};
use crate::router::{spawn_receivers, Router, ShardMessage};
use crate::shard::lifecycle::Lifecycle;
use crate::shard::{Coordinators, Shard};
use crate::{admin, server};

const CLEAN_SHUTDOWN_MARKER: &str = ".sluice_clean_shutdown";

/// The thread that waits for SIGINT and SIGTERM (a `pthread_t`; 0 before it
/// exists). Signals are the process's, so this one thing is process-wide.
static SIGNAL_WAITER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Reads or creates `meta.properties`, holding the cluster id and node id as
/// Kafka does. A cluster node's id is `wanted` (the same on every node); a
/// data dir that already belongs to another cluster is refused, as Kafka
/// refuses one with an inconsistent cluster id.
fn cluster_id(data_dir: &Path, node_id: i32, wanted: Option<String>) -> std::io::Result<String> {
    let path = data_dir.join("meta.properties");
    if let Some(bytes) = crate::storage::file::read_bounded(&path, 64 * 1024)? {
        let text = String::from_utf8_lossy(&bytes);
        if let Some(id) = text.lines().find_map(|l| l.strip_prefix("cluster.id=")) {
            let id = id.trim().to_string();
            if let Some(wanted) = wanted.filter(|w| *w != id) {
                return Err(std::io::Error::other(format!(
                    "{} belongs to cluster {id}, but this node's controller.quorum.voters make cluster {wanted}: \
                     use an empty log.dirs to join this cluster",
                    data_dir.display()
                )));
            }
            return Ok(id);
        }
    }
    // Kafka's cluster ids are 16 random bytes in URL-safe base64 without padding.
    let id = wanted.unwrap_or_else(|| base64_url(uuid::Uuid::new_v4().as_bytes()));
    let text = format!("version=1\ncluster.id={id}\nnode.id={node_id}\n");
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(data_dir)?.sync_all()?;
    Ok(id)
}

/// How long a start waits for a fixed port its previous run still held.
const BIND_WAIT_MS: u64 = 10_000;

/// Binds `address`, waiting up to [`BIND_WAIT_MS`] while it is in use. A
/// process killed with io_uring operations in flight (a pending accept) has
/// its sockets closed by the kernel a little after it is gone, so a restart
/// right after kill -9 can find its own port still listening.
fn bind_waiting(address: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(BIND_WAIT_MS);
    loop {
        match std::net::TcpListener::bind(address) {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && address.port() != 0 => {
                if std::time::Instant::now() >= deadline {
                    return Err(e);
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            result => return result,
        }
    }
}

/// A cluster's id, the same on every node: 16 bytes hashed from its voters
/// (in id order, so the order they are listed in does not matter).
fn cluster_id_of(cluster: &crate::config::ClusterConfig) -> String {
    let voters: Vec<String> = cluster.voters.iter().map(|v| format!("{}@{}:{}", v.id, v.host, v.port)).collect();
    let text = voters.join(",");
    let mut bytes = Vec::with_capacity(16);
    for seed in 0..4u32 {
        bytes.extend_from_slice(&crc32c::crc32c_append(seed.wrapping_mul(0x9e37_79b9), text.as_bytes()).to_be_bytes());
    }
    base64_url(&bytes)
}

fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for b in bytes {
        acc = (acc << 8) | *b as u32;
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    out
}

/// Runs if SIGINT or SIGTERM reaches a thread that does not block them (one a
/// runtime or library started before `main`, such as a sanitizer's), which
/// would otherwise die of the signal's default action: hands the signal to
/// the waiting thread.
extern "C" fn on_stop_signal(signal: libc::c_int) {
    let waiter = SIGNAL_WAITER.load(Ordering::Acquire);
    if waiter != 0 {
        // SAFETY: pthread_kill is async-signal-safe; `waiter` is the live signal thread.
        unsafe { libc::pthread_kill(waiter as libc::pthread_t, signal) };
    }
}

/// Blocks SIGINT and SIGTERM in every thread (executors inherit the mask) and
/// returns a thread that waits for one and asks the shards to stop.
fn spawn_signal_waiter(lifecycle: Arc<Lifecycle>) -> std::thread::JoinHandle<()> {
    // SAFETY: plain libc calls on zeroed, frame-owned sigaction and sigset
    // values; the handler only forwards the signal.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    let waiter = std::thread::spawn(move || {
        let mut signal = 0;
        // SAFETY: `set` is a valid sigset; sigwait writes the signal number.
        unsafe { libc::sigwait(&set, &mut signal) };
        tracing::info!(signal, "stopping");
        lifecycle.stop();
    });
    SIGNAL_WAITER.store(waiter.as_pthread_t() as u64, Ordering::Release);
    // SAFETY: as above; installed once the waiter it forwards to exists.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
        libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut());
    }
    waiter
}

/// A port for `address` (whose port is 0), chosen by the kernel and held by
/// the returned socket: bound with SO_REUSEPORT, as the shards bind it, and
/// not listening.
fn reserve_port(address: std::net::SocketAddr) -> std::io::Result<(socket2::Socket, std::net::SocketAddr)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_port(true)?;
    socket.bind(&address.into())?;
    let bound = socket.local_addr()?.as_socket().ok_or_else(|| std::io::Error::other("not an IP address"))?;
    Ok((socket, bound))
}

/// Runs the broker until SIGINT or SIGTERM; returns once every shard has stopped.
pub fn run(config: BrokerConfig) -> Result<(), String> {
    keep_large_buffers_in_the_heap();
    let lifecycle = Arc::new(Lifecycle::default());
    let _signals = spawn_signal_waiter(lifecycle.clone());
    raise_open_files_limit();
    serve(config, lifecycle)
}

/// Request frames and disk reads (2 MiB and more, see `READ_AHEAD_BYTES`)
/// are large buffers that come and go at the rate of requests. glibc hands
/// out every allocation over 128 KiB as a fresh mmap (raising that threshold
/// by itself only as such buffers are freed) and gives freed heap tops back,
/// so each buffer cost page faults, zeroed pages and an munmap's TLB
/// shootdown: a fifth of the broker's CPU when consumers read from disk.
/// Buffers up to 32 MiB (glibc's largest threshold) now come from the heap,
/// which keeps up to 256 MiB free at its top instead of returning it.
fn keep_large_buffers_in_the_heap() {
    const MMAP_THRESHOLD_BYTES: libc::c_int = 32 * 1024 * 1024;
    const TRIM_THRESHOLD_BYTES: libc::c_int = 256 * 1024 * 1024;
    // SAFETY: mallopt only sets allocator parameters; called before any shard thread starts.
    let set = unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
    };
    if !set {
        tracing::warn!("could not set the allocator's mmap and trim thresholds");
    }
}

/// Raises this process's soft limit on open files to its hard limit, as the
/// JVM does for Kafka: every partition keeps its active segment and index
/// open, and every client connection is a file too, so the common soft
/// default of 1024 would refuse the thousand-and-first. Logs the limit.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit with a valid resource and a pointer to a live rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    tracing::info!(open_files_max = limit.rlim_cur, "open files limit");
}

/// Runs one broker until `lifecycle` is asked to stop; returns once every
/// shard has stopped.
pub fn serve(mut config: BrokerConfig, lifecycle: Arc<Lifecycle>) -> Result<(), String> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| format!("create {}: {e}", config.data_dir.display()))?;
    // Every shard must bind the same port: a listener on port 0 has it chosen
    // once here, by a socket that keeps it reserved until the broker stops
    // (bound with SO_REUSEPORT, never listening, so it takes no connections),
    // so that no other process takes the port before every shard has bound it.
    let mut _reserved_ports = Vec::new();
    for listener in &mut config.listeners {
        if listener.bind.port() == 0 {
            let (reserved, bound) = reserve_port(listener.bind)
                .map_err(|e| format!("bind listener {} {}: {e}", listener.name, listener.bind))?;
            listener.bind = bound;
            if listener.advertised_port == 0 {
                listener.advertised_port = listener.bind.port();
            }
            _reserved_ports.push(reserved);
        }
    }
    // A certificate or key that does not load fails the start, with its reason.
    crate::server::listener::check_listeners(&config.listeners)?;
    // One warning naming them all, as Kafka logs the keys it does not use and starts.
    if !config.ignored_keys.is_empty() {
        tracing::warn!(
            keys = %config.ignored_keys.join(", "),
            "config file keys are Kafka broker configs Sluice does not use; ignored"
        );
    }
    let cluster_id: Arc<str> = cluster_id(&config.data_dir, config.node_id, config.cluster.as_ref().map(cluster_id_of))
        .map_err(|e| format!("meta.properties: {e}"))?
        .into();
    let marker = config.data_dir.join(CLEAN_SHUTDOWN_MARKER);
    let clean_start = marker.exists();
    if clean_start {
        std::fs::remove_file(&marker).map_err(|e| format!("remove {}: {e}", marker.display()))?;
        std::fs::File::open(&config.data_dir).and_then(|d| d.sync_all()).map_err(|e| e.to_string())?;
    }
    tracing::info!(
        listeners = %config.listeners.iter().map(|l| format!("{}://{}", l.name, l.bind)).collect::<Vec<_>>().join(","),
        data_dir = %config.data_dir.display(), shards = config.shards,
        clean_start, %cluster_id, "starting sluice"
    );

    // Bound here, before any shard starts, so that a taken port fails the start.
    let admin_listener = match config.admin_listen {
        Some(address) => {
            let listener = bind_waiting(address).map_err(|e| format!("bind admin listener {address}: {e}"))?;
            let bound = listener.local_addr().map_err(|e| e.to_string())?;
            tracing::info!(admin_addr = %bound, "admin HTTP server (metrics, health, console) at http://{bound}/");
            Some(listener)
        }
        None => None,
    };
    let registry_listener = match config.schema_registry_listen {
        Some(address) => {
            let listener =
                bind_waiting(address).map_err(|e| format!("bind schema registry listener {address}: {e}"))?;
            let bound = listener.local_addr().map_err(|e| e.to_string())?;
            tracing::info!(schema_registry_addr = %bound, "schema registry at http://{bound}/");
            Some(listener)
        }
        None => None,
    };
    // The controller listener, a cluster node's: bound here, served by the admin shard.
    let controller_listener = match config.cluster.as_ref().and_then(|c| c.controller_bind.map(|a| (c, a))) {
        Some((cluster, address)) => {
            let listener = bind_waiting(address)
                .map_err(|e| format!("bind controller listener {} {address}: {e}", cluster.controller_listener))?;
            tracing::info!(listener = %cluster.controller_listener, addr = %address, voters = %cluster.voters_text, "cluster node: metadata quorum on the controller listener");
            Some(listener)
        }
        None => None,
    };
    let admin_listener = Arc::new(std::sync::Mutex::new(HttpListeners {
        admin: admin_listener,
        registry: registry_listener,
        controller: controller_listener,
    }));
    let started = std::time::Instant::now();
    let config = Arc::new(config);
    let mesh = MeshBuilder::<ShardMessage, _>::full(config.shards, MESH_CHANNEL_DEPTH);
    let cpus = shard_cpus(config.cpus.as_deref())?;
    let mut pool = LocalExecutorPoolBuilder::new(PoolPlacement::MaxSpread(config.shards, Some(cpus)))
        .name("sluice-shard")
        .io_memory(IO_MEMORY_BYTES_PER_SHARD);
    if config.spin_before_park_us > 0 {
        pool = pool.spin_before_park(std::time::Duration::from_micros(config.spin_before_park_us));
    }
    let handles = pool
        .on_all_shards(move || {
            let config = config.clone();
            let cluster_id = cluster_id.clone();
            let mesh = mesh.clone();
            let lifecycle = lifecycle.clone();
            let admin_listener = admin_listener.clone();
            async move {
                let start = ShardStart { config, cluster_id, mesh, clean_start, lifecycle, admin_listener, started };
                run_shard(start).await
            }
        })
        .map_err(|e| format!("start shards: {e}"))?;
    let results = handles.join_all();
    let mut clean = true;
    for result in results {
        match result {
            Ok(Ok(shard_clean)) => clean &= shard_clean,
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(format!("shard failed: {e:?}")),
        }
    }
    let data_dir = std::env::current_dir().map(|d| d.join(&*marker)).unwrap_or(marker.clone());
    if clean {
        std::fs::write(&marker, b"").map_err(|e| format!("write {}: {e}", data_dir.display()))?;
        if let Some(dir) = marker.parent() {
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| e.to_string())?;
        }
        tracing::info!("stopped cleanly");
    } else {
        tracing::warn!("stopped with unsynced partitions: the next start rebuilds their indexes");
    }
    Ok(())
}

/// The HTTP listeners, bound before the shards start; the admin shard serves them.
struct HttpListeners {
    admin: Option<std::net::TcpListener>,
    registry: Option<std::net::TcpListener>,
    controller: Option<std::net::TcpListener>,
}

/// What each shard starts from.
struct ShardStart {
    config: Arc<BrokerConfig>,
    cluster_id: Arc<str>,
    mesh: MeshBuilder<ShardMessage, glommio::channels::channel_mesh::Full>,
    clean_start: bool,
    lifecycle: Arc<Lifecycle>,
    /// Taken by the admin shard.
    admin_listener: Arc<std::sync::Mutex<HttpListeners>>,
    started: std::time::Instant,
}

/// The consumer groups' settings, with the assignors' names checked.
fn consumer_settings(
    config: &crate::config::ConsumerGroupConfig,
) -> Result<crate::group::consumer::ConsumerSettings, String> {
    use crate::group::consumer::AssignorKind;
    let assignors = config
        .assignors
        .iter()
        .map(|name| {
            AssignorKind::parse(name).ok_or_else(|| format!("group.consumer.assignors: unknown assignor {name:?}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(crate::group::consumer::ConsumerSettings {
        session_timeout: std::time::Duration::from_millis(config.session_timeout_ms),
        heartbeat_interval_ms: config.heartbeat_interval_ms as i32,
        assignors,
        members_max: config.max_size,
        upgrade_enabled: matches!(config.migration_policy.as_str(), "upgrade" | "bidirectional"),
        downgrade_enabled: matches!(config.migration_policy.as_str(), "downgrade" | "bidirectional"),
    })
}

async fn run_shard(start: ShardStart) -> Result<bool, String> {
    let ShardStart { config, cluster_id, mesh, clean_start, lifecycle, admin_listener, started } = start;
    let (senders, receivers) = mesh.join().await.map_err(|_| "join the shard mesh".to_string())?;
    let router = Router::new(senders);
    let controller = if router.shard_id == 0 { Some(Controller::load(config.clone()).await?) } else { None };
    let settings = crate::group::coordinator::GroupSettings {
        initial_rebalance_delay: std::time::Duration::from_millis(config.group_initial_rebalance_delay_ms),
        offsets_retention: std::time::Duration::from_secs(config.offsets_retention_minutes * 60),
        consumer: consumer_settings(&config.consumer_groups)?,
    };
    let groups = crate::group::coordinator::GroupCoordinator::open(
        &config.data_dir,
        router.shard_id,
        router.shards,
        settings,
        config.cluster.is_some(),
    )
    .await?;
    let txn_settings = crate::txn::coordinator::TxnSettings {
        timeout_ms_max: config.transaction_max_timeout_ms,
        id_expiration_ms: i64::from(config.transactional_id_expiration_ms),
    };
    let txns = crate::txn::coordinator::TxnCoordinator::open(
        &config.data_dir,
        router.shard_id,
        router.shards,
        txn_settings,
        config.cluster.is_some(),
    )
    .await?;
    let shard = Rc::new(Shard::new(
        config,
        cluster_id,
        router,
        Coordinators { controller, groups, txns },
        clean_start,
        lifecycle,
    ));
    if shard.id == admin::ADMIN_SHARD {
        let (listener, registry_listener, controller_listener) = {
            let mut listeners = admin_listener.lock().map_err(|_| "admin listener lock poisoned".to_string())?;
            (listeners.admin.take(), listeners.registry.take(), listeners.controller.take())
        };
        if shard.config.cluster.is_some() {
            crate::cluster::start(shard.clone(), controller_listener).await?;
        }
        // Behind Kafka work: a small share and no latency promise.
        let queue =
            glommio::executor().create_task_queue(glommio::Shares::Static(50), glommio::Latency::NotImportant, "admin");
        let registry_address = registry_listener.as_ref().and_then(|l| l.local_addr().ok());
        let registry = crate::registry::install(shard.clone(), registry_address)?;
        if let Some(listener) = registry_listener {
            let registry_shard = shard.clone();
            glommio::spawn_local_into(
                async move {
                    if let Err(e) = crate::registry::listen(registry_shard, registry, listener).await {
                        tracing::error!(error = %e, "schema registry listener failed");
                    }
                },
                queue,
            )
            .map_err(|e| format!("spawn schema registry listener: {e}"))?
            .detach();
        }
        if let Some(listener) = listener {
            let admin_shard = shard.clone();
            glommio::spawn_local_into(
                async move {
                    if let Err(e) = admin::listen(admin_shard, listener, started).await {
                        tracing::error!(error = %e, "admin listener failed");
                    }
                },
                queue,
            )
            .map_err(|e| format!("spawn admin listener: {e}"))?
            .detach();
        }
    }
    let serve_shard = shard.clone();
    spawn_receivers(receivers, Rc::new(move |request| serve_shard.serve(request)));
    if let Some(controller) = &shard.controller {
        shard.env().publish(controller.catalog()).await;
    }
    // Every shard has its partitions open before any listener accepts: a
    // request taken by one shard may be routed to any other.
    shard.wait_for_catalog().await;
    shard.lifecycle.shard_opened();
    while !shard.lifecycle.all_opened(shard.router.shards) && !shard.lifecycle.stopping() {
        glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
    }
    // Sessions, rebalance deadlines and offset expiry, in a low-priority queue.
    let sweeper = shard.clone();
    let background = glommio::executor().create_task_queue(
        glommio::Shares::Static(100),
        glommio::Latency::NotImportant,
        "background",
    );
    glommio::spawn_local_into(
        async move {
            while !sweeper.lifecycle.stopping() {
                glommio::timer::sleep(std::time::Duration::from_millis(crate::constants::GROUP_SWEEP_INTERVAL_MS))
                    .await;
                sweeper.groups.sweep().await;
                sweeper.txns.sweep(&sweeper.env()).await;
            }
        },
        background,
    )
    .map_err(|e| format!("spawn group sweeper: {e}"))?
    .detach();
    let retainer = shard.clone();
    let interval = std::time::Duration::from_millis(shard.config.log_retention_check_interval_ms);
    // Kafka looks every `producer.id.expiration.check.interval.ms` (10 minutes);
    // a shorter expiration is looked for as often as it is long.
    let producer_check = std::time::Duration::from_millis(
        (shard.config.producer_id_expiration_ms as u64)
            .min(crate::constants::PRODUCER_EXPIRATION_CHECK_INTERVAL_MS_MAX),
    );
    glommio::spawn_local_into(
        async move {
            let mut next_retention = std::time::Instant::now() + interval;
            let mut next_producer_check = std::time::Instant::now() + producer_check;
            while !retainer.lifecycle.stopping() {
                glommio::timer::sleep(std::time::Duration::from_millis(crate::constants::BACKGROUND_TICK_MS)).await;
                // Disk buffers last used by other shards, should none be read or written here meanwhile.
                crate::storage::dma_bytes::release_returned();
                retainer.checkpoint_recovery_points().await;
                if std::time::Instant::now() >= next_retention {
                    retainer.enforce_retention();
                    next_retention = std::time::Instant::now() + interval;
                }
                if std::time::Instant::now() >= next_producer_check {
                    retainer.remove_expired_producers();
                    next_producer_check = std::time::Instant::now() + producer_check;
                }
            }
        },
        background,
    )
    .map_err(|e| format!("spawn retention: {e}"))?
    .detach();
    // Log compaction of this shard's partitions, behind everything else.
    let cleaner_queue =
        glommio::executor().create_task_queue(glommio::Shares::Static(25), glommio::Latency::NotImportant, "cleaner");
    let cleaner = shard.clone();
    glommio::spawn_local_into(async move { cleaner.run_cleaner().await }, cleaner_queue)
        .map_err(|e| format!("spawn log cleaner: {e}"))?
        .detach();
    // The metrics' second: latency windows and the busy share.
    let ticker = shard.clone();
    glommio::spawn_local_into(
        async move {
            let mut last = std::time::Instant::now();
            while !ticker.lifecycle.stopping() {
                glommio::timer::sleep(std::time::Duration::from_secs(1)).await;
                let now = std::time::Instant::now();
                ticker.metrics.tick(now - last);
                last = now;
            }
        },
        background,
    )
    .map_err(|e| format!("spawn metrics ticker: {e}"))?
    .detach();
    let listener_shard = shard.clone();
    server::listen(listener_shard).await?;
    // A cluster node first moves its leaderships to other replicas (controlled shutdown).
    if shard.id == crate::admin::ADMIN_SHARD && shard.config.cluster.is_some() {
        let deadline = std::time::Instant::now()
            + std::time::Duration::from_millis(crate::constants::CONTROLLED_SHUTDOWN_MS_MAX + 1_000);
        while !crate::cluster::left() && std::time::Instant::now() < deadline {
            glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    // Stop: no new connections or requests; let in-flight ones finish (a
    // long-poll fetch at most its wait), then sync and close every partition.
    let drain_deadline =
        std::time::Instant::now() + std::time::Duration::from_millis(crate::constants::STOP_DRAIN_MS_MAX);
    while shard.inflight_requests.get() > 0 && std::time::Instant::now() < drain_deadline {
        glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
    }
    if shard.inflight_requests.get() > 0 {
        tracing::warn!(shard = shard.id, requests = shard.inflight_requests.get(), "stopping with requests unanswered");
    }
    // Requests of other shards may still read or write this shard's partitions:
    // close them only once every shard has drained.
    shard.lifecycle.shard_drained();
    while shard.lifecycle.drained_shards() < shard.router.shards && std::time::Instant::now() < drain_deadline {
        glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
    }
    shard.txns.close().await;
    shard.groups.close().await;
    Ok(shard.close_all().await)
}

/// The CPUs shards are spread over: those listed, or those the process may
/// run on (its affinity mask, as `taskset` or systemd's `CPUAffinity=` set it).
fn shard_cpus(listed: Option<&[usize]>) -> Result<glommio::CpuSet, String> {
    let allowed: Vec<usize> = match listed {
        Some(cpus) => cpus.to_vec(),
        None => {
            // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it for this process.
            let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
            let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
            if rc != 0 {
                return Err(format!("sched_getaffinity: {}", std::io::Error::last_os_error()));
            }
            (0..libc::CPU_SETSIZE as usize).filter(|cpu| unsafe { libc::CPU_ISSET(*cpu, &set) }).collect()
        }
    };
    let set = glommio::CpuSet::online().map_err(|e| format!("online CPUs: {e}"))?.filter(|l| allowed.contains(&l.cpu));
    if set.is_empty() {
        return Err(format!("none of the CPUs {allowed:?} is online"));
    }
    Ok(set)
}
