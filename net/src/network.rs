//! The running transport: endpoint, per-peer tasks, stream writers and readers.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Connection, Endpoint, ReadExactError, RecvStream, SendStream, VarInt, WriteError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rustls::pki_types::CertificateDer;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::inbox::{inbox, InboxTx};
use crate::stats::Stats;
use crate::tls::{self, Identity, SERVER_NAME};
use crate::{
    codes, short, Class, Faults, Incoming, NetConfig, NetError, NetStats, PeerKey, Receivers,
    SendError, IDLE_TIMEOUT, KEEP_ALIVE,
};

/// Initial buffer of a payload that arrives in several chunks; it grows with the data read.
const READ_CHUNK: usize = 64 * 1024;
/// Frames gathered into one stream write when several are queued.
const WRITE_BATCH: usize = 64;
/// Incoming handshakes in progress at once; further connection attempts are refused.
const MAX_PENDING_HANDSHAKES: usize = 256;
/// Per-stream receive window. Two bulk streams (sync, mempool) at this window stay well under
/// the connection window, so a stalled bulk stream never starves the consensus stream.
const STREAM_RECEIVE_WINDOW: u32 = 4 * 1024 * 1024;
/// Per-connection receive window.
const CONNECTION_RECEIVE_WINDOW: u32 = 16 * 1024 * 1024;
/// Per-connection send window.
const SEND_WINDOW: u64 = 16 * 1024 * 1024;
/// How long shutdown waits for peers to be told the connections are closed.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// A handle to the running transport. Cheap to clone; dropping the last clone stops it.
#[derive(Clone)]
pub struct Network {
    inner: Arc<Inner>,
}

/// What the per-connection tasks share.
struct Shared {
    key: PeerKey,
    stats: Arc<Stats>,
    max_frame_bytes: usize,
    queue_frames: usize,
    queue_bytes: usize,
    faults: Option<Faults>,
    inboxes: [InboxTx; 3],
    connected: Mutex<HashMap<PeerKey, Connection>>,
}

/// The sending side of one peer's queues, with the payload bytes each holds.
struct PeerQueues {
    queues: [mpsc::Sender<Bytes>; 3],
    bytes: [Arc<AtomicUsize>; 3],
}

/// State owned by the `Network` handles.
struct Inner {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    peers: HashMap<PeerKey, PeerQueues>,
    endpoint: Mutex<Option<Endpoint>>,
    /// The accept loop and the per-peer tasks; dropping the set aborts them.
    tasks: Mutex<JoinSet<()>>,
    closed: AtomicBool,
}

/// Lock a mutex, ignoring poisoning (the guarded data stays consistent: every critical section
/// is a single map or option operation).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn code(code: u32) -> VarInt {
    VarInt::from_u32(code)
}

impl Network {
    /// Bind the listen address and start dialing and accepting peers.
    pub async fn start(cfg: NetConfig) -> Result<(Network, Receivers), NetError> {
        validate(&cfg)?;
        let identity = Identity::from_secret(&cfg.secret)?;
        let mut peers: Vec<crate::PeerConfig> = Vec::with_capacity(cfg.peers.len());
        let mut seen = HashSet::new();
        for peer in &cfg.peers {
            if peer.key == identity.key {
                continue;
            }
            if !seen.insert(peer.key) {
                return Err(NetError::Config(format!(
                    "peer {} is listed twice; list each peer once",
                    short(&peer.key)
                )));
            }
            peers.push(*peer);
        }

        let socket = UdpSocket::bind(cfg.listen).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AddrInUse {
                NetError::AddrInUse {
                    port: cfg.listen.port(),
                }
            } else {
                NetError::Bind {
                    addr: cfg.listen,
                    source,
                }
            }
        })?;

        let stats = Arc::new(Stats::default());
        let transport = Arc::new(transport_config());
        let server_tls = tls::server_config(&identity, seen.clone())?;
        let server_crypto = QuicServerConfig::try_from(server_tls)
            .map_err(|e| NetError::Tls(format!("QUIC server crypto: {e}")))?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(server_crypto));
        server.transport_config(transport.clone());
        let endpoint = Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(server),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(NetError::Endpoint)?;
        let local_addr = endpoint.local_addr().map_err(NetError::Endpoint)?;

        let (consensus_tx, consensus) = inbox(cfg.inbox_bytes_per_peer);
        let (sync_tx, sync) = inbox(cfg.inbox_bytes_per_peer);
        let (mempool_tx, mempool) = inbox(cfg.inbox_bytes_per_peer);
        let shared = Arc::new(Shared {
            key: identity.key,
            stats: stats.clone(),
            max_frame_bytes: cfg.max_frame_bytes,
            queue_frames: cfg.queue_frames,
            queue_bytes: cfg.queue_bytes,
            faults: cfg.faults,
            inboxes: [consensus_tx, sync_tx, mempool_tx],
            connected: Mutex::new(HashMap::new()),
        });

        let mut tasks = JoinSet::new();
        let mut queues = HashMap::with_capacity(peers.len());
        let mut routes = HashMap::new();
        for peer in peers {
            let mut senders = Vec::with_capacity(3);
            let mut receivers = Vec::with_capacity(3);
            for _ in Class::ALL {
                let (tx, rx) = mpsc::channel(cfg.queue_frames);
                senders.push(tx);
                receivers.push(Arc::new(tokio::sync::Mutex::new(rx)));
            }
            let (Ok(senders), Ok(receivers)) =
                (<[_; 3]>::try_from(senders), <[_; 3]>::try_from(receivers))
            else {
                // One queue per class was pushed above, so both vectors hold exactly three.
                return Err(NetError::Config(
                    "internal: queue count mismatch".to_string(),
                ));
            };
            let bytes: [Arc<AtomicUsize>; 3] = Default::default();
            queues.insert(
                peer.key,
                PeerQueues {
                    queues: senders,
                    bytes: bytes.clone(),
                },
            );
            let task = PeerTask {
                key: peer.key,
                shared: shared.clone(),
                queues: receivers,
                bytes,
                reconnect_min: cfg.reconnect_min,
                reconnect_max: cfg.reconnect_max,
            };
            if identity.key < peer.key {
                let client_tls = tls::client_config(&identity, peer.key, stats.clone())?;
                let client_crypto = QuicClientConfig::try_from(client_tls)
                    .map_err(|e| NetError::Tls(format!("QUIC client crypto: {e}")))?;
                let mut client = quinn::ClientConfig::new(Arc::new(client_crypto));
                client.transport_config(transport.clone());
                tasks.spawn(task.run_dialer(endpoint.clone(), client, peer.addr));
            } else {
                let (tx, rx) = mpsc::channel(4);
                routes.insert(peer.key, tx);
                tasks.spawn(task.run_acceptor(rx));
            }
        }
        tasks.spawn(accept_loop(
            endpoint.clone(),
            Arc::new(routes),
            stats.clone(),
        ));
        info!(key = %short(&identity.key), %local_addr, peers = queues.len(), "network started");

        let inner = Arc::new(Inner {
            shared,
            local_addr,
            peers: queues,
            endpoint: Mutex::new(Some(endpoint)),
            tasks: Mutex::new(tasks),
            closed: AtomicBool::new(false),
        });
        Ok((
            Network { inner },
            Receivers {
                consensus,
                sync,
                mempool,
            },
        ))
    }

    /// The address the endpoint is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// This node's ed25519 network key.
    pub fn public_key(&self) -> PeerKey {
        self.inner.shared.key
    }

    fn queue(
        &self,
        to: &PeerKey,
        class: Class,
        len: usize,
    ) -> Result<(&mpsc::Sender<Bytes>, &AtomicUsize), SendError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(SendError::Closed);
        }
        let peer = self.inner.peers.get(to).ok_or(SendError::UnknownPeer)?;
        let max = self.inner.shared.max_frame_bytes;
        if len > max {
            return Err(SendError::TooLarge { len, max });
        }
        Ok((&peer.queues[class.index()], &peer.bytes[class.index()]))
    }

    /// Queue a frame without waiting. Callable from any thread, inside a runtime or not.
    /// `Full` when the peer's queue for `class` holds `queue_frames` frames or the frame
    /// would take it past `queue_bytes`.
    pub fn try_send(&self, to: &PeerKey, class: Class, payload: Bytes) -> Result<(), SendError> {
        let (queue, bytes) = self.queue(to, class, payload.len())?;
        let len = payload.len();
        let before = bytes.fetch_add(len, Ordering::AcqRel);
        if before.saturating_add(len) > self.inner.shared.queue_bytes {
            bytes.fetch_sub(len, Ordering::AcqRel);
            self.inner.shared.stats.count_dropped_full(class);
            return Err(SendError::Full);
        }
        match queue.try_send(payload) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                bytes.fetch_sub(len, Ordering::AcqRel);
                self.inner.shared.stats.count_dropped_full(class);
                Err(SendError::Full)
            }
            Err(TrySendError::Closed(_)) => {
                bytes.fetch_sub(len, Ordering::AcqRel);
                Err(SendError::Closed)
            }
        }
    }

    /// Queue a frame, waiting while the peer's queue for `class` is full (in frames; its
    /// bytes are counted but not waited on).
    pub async fn send(&self, to: &PeerKey, class: Class, payload: Bytes) -> Result<(), SendError> {
        let (queue, bytes) = self.queue(to, class, payload.len())?;
        let len = payload.len();
        bytes.fetch_add(len, Ordering::AcqRel);
        queue.send(payload).await.map_err(|_| {
            bytes.fetch_sub(len, Ordering::AcqRel);
            SendError::Closed
        })
    }

    /// Queue a frame to every configured peer without waiting; returns how many queued it.
    pub fn broadcast(&self, class: Class, payload: Bytes) -> usize {
        self.inner
            .peers
            .keys()
            .filter(|key| self.try_send(key, class, payload.clone()).is_ok())
            .count()
    }

    /// The peers with an established connection right now.
    pub fn connected(&self) -> Vec<PeerKey> {
        lock(&self.inner.shared.connected).keys().copied().collect()
    }

    /// The transport's counters.
    pub fn stats(&self) -> NetStats {
        self.inner.shared.stats.snapshot()
    }

    /// Stop every task, close every connection (telling peers), and release the listen port.
    /// Later sends fail with [`SendError::Closed`]; the receivers end once drained.
    pub async fn shutdown(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut tasks = std::mem::take(&mut *lock(&self.inner.tasks));
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        let connections: Vec<Connection> = lock(&self.inner.shared.connected)
            .drain()
            .map(|(_, conn)| conn)
            .collect();
        let endpoint = lock(&self.inner.endpoint).take();
        if let Some(endpoint) = endpoint {
            endpoint.close(code(codes::SHUTDOWN), b"node shutting down");
            drop(connections);
            if tokio::time::timeout(CLOSE_GRACE, endpoint.wait_idle())
                .await
                .is_err()
            {
                debug!("connections still draining at shutdown");
            }
            drop(endpoint);
            wait_port_released(self.inner.local_addr).await;
        }
        info!(key = %short(&self.inner.shared.key), "network shut down");
    }
}

/// Wait (bounded) until the endpoint's driver has let go of the UDP socket, so that a node
/// restarted on the same address can bind it as soon as `shutdown` returns.
async fn wait_port_released(addr: SocketAddr) {
    let deadline = Instant::now() + CLOSE_GRACE;
    loop {
        if UdpSocket::bind(addr).is_ok() {
            return;
        }
        if Instant::now() >= deadline {
            warn!(%addr, "listen socket still bound after shutdown");
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn validate(cfg: &NetConfig) -> Result<(), NetError> {
    if cfg.max_frame_bytes == 0 || u32::try_from(cfg.max_frame_bytes).is_err() {
        return Err(NetError::Config(format!(
            "max_frame_bytes is {}; it must be between 1 and {} (the u32 length prefix)",
            cfg.max_frame_bytes,
            u32::MAX
        )));
    }
    if cfg.queue_bytes < cfg.max_frame_bytes {
        return Err(NetError::Config(format!(
            "queue_bytes is {}; it must be at least max_frame_bytes ({}), or a largest frame \
             could never be queued",
            cfg.queue_bytes, cfg.max_frame_bytes
        )));
    }
    if cfg.queue_frames == 0 || cfg.queue_frames > tokio::sync::Semaphore::MAX_PERMITS {
        return Err(NetError::Config(format!(
            "queue_frames is {}; it must be between 1 and {}",
            cfg.queue_frames,
            tokio::sync::Semaphore::MAX_PERMITS
        )));
    }
    if cfg.inbox_bytes_per_peer == 0 {
        return Err(NetError::Config(
            "inbox_bytes_per_peer is 0; a peer needs room for at least one frame".to_string(),
        ));
    }
    if cfg.reconnect_min.is_zero() || cfg.reconnect_min > cfg.reconnect_max {
        return Err(NetError::Config(format!(
            "reconnect backoff {:?}..{:?} is invalid; reconnect_min must be positive and at most reconnect_max",
            cfg.reconnect_min, cfg.reconnect_max
        )));
    }
    if let Some(faults) = &cfg.faults {
        if !(0.0..=1.0).contains(&faults.loss) {
            return Err(NetError::Config(format!(
                "fault loss probability {} is outside [0, 1]",
                faults.loss
            )));
        }
    }
    Ok(())
}

fn transport_config() -> quinn::TransportConfig {
    let mut transport = quinn::TransportConfig::default();
    transport
        .keep_alive_interval(Some(KEEP_ALIVE))
        .max_idle_timeout(Some(quinn::IdleTimeout::from(VarInt::from_u32(
            // Milliseconds; IDLE_TIMEOUT is a small constant.
            u32::try_from(IDLE_TIMEOUT.as_millis()).unwrap_or(u32::MAX),
        ))))
        .max_concurrent_uni_streams(VarInt::from_u32(3))
        .max_concurrent_bidi_streams(VarInt::from_u32(0))
        .stream_receive_window(VarInt::from_u32(STREAM_RECEIVE_WINDOW))
        .receive_window(VarInt::from_u32(CONNECTION_RECEIVE_WINDOW))
        .send_window(SEND_WINDOW);
    transport
}

/// The authenticated key of a connection's peer.
fn connection_key(conn: &Connection) -> Option<PeerKey> {
    let identity = conn.peer_identity()?;
    let certs = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    tls::peer_key(&certs)
}

/// Accept incoming connections and hand each authenticated one to its peer's task.
async fn accept_loop(
    endpoint: Endpoint,
    routes: Arc<HashMap<PeerKey, mpsc::Sender<Connection>>>,
    stats: Arc<Stats>,
) {
    let mut handshakes = JoinSet::new();
    loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { return };
                if handshakes.len() >= MAX_PENDING_HANDSHAKES {
                    debug!(remote = %incoming.remote_address(), "too many handshakes in progress; refusing");
                    incoming.refuse();
                    continue;
                }
                handshakes.spawn(accept_one(incoming, routes.clone(), stats.clone()));
            }
            Some(_) = handshakes.join_next() => {}
        }
    }
}

async fn accept_one(
    incoming: quinn::Incoming,
    routes: Arc<HashMap<PeerKey, mpsc::Sender<Connection>>>,
    stats: Arc<Stats>,
) {
    let remote = incoming.remote_address();
    let conn = match incoming.await {
        Ok(conn) => conn,
        Err(error) => {
            // A TLS failure detected here (crypto error codes 0x100..0x200) means this node
            // refused the client: unknown key, not ed25519, no or bad certificate or signature.
            let refused = matches!(
                &error,
                quinn::ConnectionError::TransportError(e)
                    if (0x100..0x200).contains(&u64::from(e.code))
            );
            if refused {
                stats.count_rejected_handshake();
                warn!(%remote, %error, "refused an incoming peer during the TLS handshake");
            } else {
                info!(%remote, %error, "incoming connection failed before it was established");
            }
            return;
        }
    };
    let Some(key) = connection_key(&conn) else {
        warn!(%remote, "connection without an ed25519 peer certificate; closing");
        conn.close(code(codes::PROTOCOL), b"no peer certificate");
        return;
    };
    let Some(route) = routes.get(&key) else {
        warn!(%remote, peer = %short(&key), "peer dialed although the smaller key dials; closing");
        conn.close(
            code(codes::WRONG_DIRECTION),
            b"the node with the smaller key dials",
        );
        return;
    };
    if route.send(conn).await.is_err() {
        debug!(peer = %short(&key), "peer task gone (shutting down)");
    }
}

/// The life of one peer: its queues, and its connections one after another.
struct PeerTask {
    key: PeerKey,
    shared: Arc<Shared>,
    queues: [Arc<tokio::sync::Mutex<mpsc::Receiver<Bytes>>>; 3],
    /// Payload bytes in each queue (decremented as the writer takes frames).
    bytes: [Arc<AtomicUsize>; 3],
    reconnect_min: Duration,
    reconnect_max: Duration,
}

impl PeerTask {
    /// Dial the peer, serve the connection, redial with backoff when it ends; for ever.
    async fn run_dialer(self, endpoint: Endpoint, client: quinn::ClientConfig, addr: SocketAddr) {
        let mut backoff = self.reconnect_min;
        let mut warned = false;
        loop {
            match self.dial(&endpoint, &client, addr).await {
                Ok(conn) => {
                    warned = false;
                    let started = Instant::now();
                    self.serve(conn, None).await;
                    if started.elapsed() >= self.reconnect_max {
                        backoff = self.reconnect_min;
                    }
                }
                Err(error) if backoff >= self.reconnect_max && !warned => {
                    warned = true;
                    warn!(peer = %short(&self.key), %addr, %error, "peer unreachable; still retrying every {backoff:?}");
                }
                Err(error) => {
                    debug!(peer = %short(&self.key), %addr, %error, ?backoff, "dial failed; will retry");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2).min(self.reconnect_max);
        }
    }

    async fn dial(
        &self,
        endpoint: &Endpoint,
        client: &quinn::ClientConfig,
        addr: SocketAddr,
    ) -> Result<Connection, String> {
        let connecting = endpoint
            .connect_with(client.clone(), addr, SERVER_NAME)
            .map_err(|e| e.to_string())?;
        let conn = connecting.await.map_err(|e| e.to_string())?;
        // The client verifier accepts only this peer's key; checked again for defence in depth.
        if connection_key(&conn) != Some(self.key) {
            conn.close(code(codes::PROTOCOL), b"unexpected peer key");
            return Err("peer presented an unexpected key".to_string());
        }
        Ok(conn)
    }

    /// Serve connections handed over by the accept loop; a newer one replaces the current one.
    async fn run_acceptor(self, mut conns: mpsc::Receiver<Connection>) {
        let mut next: Option<Connection> = None;
        loop {
            let conn = match next.take() {
                Some(conn) => conn,
                None => match conns.recv().await {
                    Some(conn) => conn,
                    None => return,
                },
            };
            next = self.serve(conn, Some(&mut conns)).await;
        }
    }

    /// Run one connection until it closes; returns a replacement connection if one arrived.
    async fn serve(
        &self,
        conn: Connection,
        mut replacements: Option<&mut mpsc::Receiver<Connection>>,
    ) -> Option<Connection> {
        let peer = short(&self.key);
        self.shared.stats.count_connection();
        info!(%peer, remote = %conn.remote_address(), "peer connected");
        lock(&self.shared.connected).insert(self.key, conn.clone());

        let mut tasks: JoinSet<Result<(), String>> = JoinSet::new();
        for class in Class::ALL {
            tasks.spawn(write_class(
                conn.clone(),
                class,
                self.queues[class.index()].clone(),
                self.bytes[class.index()].clone(),
                self.shared.clone(),
                self.key,
            ));
        }
        tasks.spawn(read_streams(conn.clone(), self.key, self.shared.clone()));

        let replacement = tokio::select! {
            reason = conn.closed() => {
                info!(%peer, %reason, "peer connection closed");
                None
            }
            Some(done) = tasks.join_next() => {
                let failure = match done {
                    Ok(Ok(())) => None,
                    Ok(Err(error)) => Some(error),
                    Err(join) => Some(join.to_string()),
                };
                if let Some(error) = failure {
                    warn!(%peer, %error, "stream failed; dropping the connection");
                    conn.close(code(codes::STREAM_FAILED), b"stream failed");
                } else {
                    conn.close(code(codes::SHUTDOWN), b"closing");
                }
                None
            }
            Some(newer) = next_replacement(&mut replacements) => {
                info!(%peer, "peer reconnected; replacing the old connection");
                conn.close(code(codes::REPLACED), b"replaced by a newer connection");
                Some(newer)
            }
        };
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        let mut connected = lock(&self.shared.connected);
        if connected.get(&self.key).map(Connection::stable_id) == Some(conn.stable_id()) {
            connected.remove(&self.key);
        }
        replacement
    }
}

async fn next_replacement(
    replacements: &mut Option<&mut mpsc::Receiver<Connection>>,
) -> Option<Connection> {
    match replacements {
        Some(rx) => rx.recv().await,
        None => future::pending().await,
    }
}

/// A write failure: `Ok` if the connection is simply gone, `Err` for anything else.
fn write_failed(error: WriteError) -> Result<(), String> {
    match error {
        WriteError::ConnectionLost(_) => Ok(()),
        other => Err(format!("writing to the peer failed: {other}")),
    }
}

/// Own one class's queue for the life of a connection and write its frames to one stream.
async fn write_class(
    conn: Connection,
    class: Class,
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Bytes>>>,
    queued: Arc<AtomicUsize>,
    shared: Arc<Shared>,
    peer: PeerKey,
) -> Result<(), String> {
    let mut queue = queue.lock().await;
    let mut send = match conn.open_uni().await {
        Ok(send) => send,
        Err(_) => return Ok(()),
    };
    send.set_priority(class.priority())
        .map_err(|e| format!("setting stream priority: {e}"))?;
    if let Err(error) = send.write_all(&[class.wire()]).await {
        return write_failed(error);
    }
    let mut writer = FrameWriter {
        send,
        class,
        shared: &shared,
        chunks: Vec::with_capacity(2 * WRITE_BATCH),
        pending: 0,
        queued: &queued,
    };
    match shared.faults {
        None => writer.run_plain(&conn, &mut queue).await,
        Some(faults) => writer.run_faulty(&conn, &mut queue, faults, peer).await,
    }
}

/// Encodes frames (length prefix + payload) onto one stream.
struct FrameWriter<'a> {
    send: SendStream,
    class: Class,
    shared: &'a Shared,
    chunks: Vec<Bytes>,
    pending: u64,
    queued: &'a AtomicUsize,
}

impl FrameWriter<'_> {
    /// A frame left the queue: its bytes no longer count against the queue's bound.
    fn taken(&self, frame: &Bytes) {
        self.queued.fetch_sub(frame.len(), Ordering::AcqRel);
    }

    fn push(&mut self, frame: Bytes) -> Result<(), String> {
        // `try_send`/`send` refuse frames over max_frame_bytes, which is at most u32::MAX.
        let len = u32::try_from(frame.len())
            .map_err(|_| format!("frame of {} bytes exceeds the u32 prefix", frame.len()))?;
        self.chunks.push(Bytes::copy_from_slice(&len.to_le_bytes()));
        self.chunks.push(frame);
        self.pending += 1;
        Ok(())
    }

    /// Write the gathered frames. `Ok(false)` means the connection is gone.
    async fn flush(&mut self) -> Result<bool, String> {
        if self.chunks.is_empty() {
            return Ok(true);
        }
        if let Err(error) = self.send.write_all_chunks(&mut self.chunks).await {
            return write_failed(error).map(|()| false);
        }
        self.chunks.clear();
        self.shared.stats.count_sent(self.class, self.pending);
        self.pending = 0;
        Ok(true)
    }

    async fn run_plain(
        &mut self,
        conn: &Connection,
        queue: &mut mpsc::Receiver<Bytes>,
    ) -> Result<(), String> {
        loop {
            let frame = tokio::select! {
                biased;
                _ = conn.closed() => return Ok(()),
                frame = queue.recv() => frame,
            };
            let Some(frame) = frame else { return Ok(()) };
            self.taken(&frame);
            self.push(frame)?;
            while self.pending < WRITE_BATCH as u64 {
                match queue.try_recv() {
                    Ok(frame) => {
                        self.taken(&frame);
                        self.push(frame)?
                    }
                    Err(_) => break,
                }
            }
            if !self.flush().await? {
                return Ok(());
            }
        }
    }

    async fn run_faulty(
        &mut self,
        conn: &Connection,
        queue: &mut mpsc::Receiver<Bytes>,
        faults: Faults,
        peer: PeerKey,
    ) -> Result<(), String> {
        let mut peer_seed = [0u8; 8];
        peer_seed.copy_from_slice(&peer[..8]);
        let seed = faults.seed ^ u64::from_le_bytes(peer_seed) ^ u64::from(self.class.wire());
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let jitter_nanos = u64::try_from(faults.jitter.as_nanos()).unwrap_or(u64::MAX);
        let mut delayed: VecDeque<(Instant, Bytes)> = VecDeque::new();
        let mut last_due = Instant::now();
        loop {
            let next_due = delayed.front().map(|(due, _)| *due);
            tokio::select! {
                biased;
                _ = conn.closed() => return Ok(()),
                _ = sleep_until(next_due) => {
                    let now = Instant::now();
                    while delayed.front().is_some_and(|(due, _)| *due <= now) {
                        if let Some((_, frame)) = delayed.pop_front() {
                            self.push(frame)?;
                        }
                    }
                    if !self.flush().await? {
                        return Ok(());
                    }
                }
                frame = queue.recv(), if delayed.len() < self.shared.queue_frames => {
                    let Some(frame) = frame else { return Ok(()) };
                    self.taken(&frame);
                    if faults.loss > 0.0 && rng.gen_bool(faults.loss) {
                        self.shared.stats.count_dropped_fault();
                        continue;
                    }
                    let jitter = if jitter_nanos == 0 {
                        Duration::ZERO
                    } else {
                        Duration::from_nanos(rng.gen_range(0..=jitter_nanos))
                    };
                    // Never earlier than the previous frame: the stream keeps its order.
                    let due = (Instant::now() + faults.latency + jitter).max(last_due);
                    last_due = due;
                    delayed.push_back((due, frame));
                }
            }
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => future::pending().await,
    }
}

/// Accept the peer's streams and read each one.
async fn read_streams(conn: Connection, peer: PeerKey, shared: Arc<Shared>) -> Result<(), String> {
    let mut streams: JoinSet<()> = JoinSet::new();
    loop {
        tokio::select! {
            accepted = conn.accept_uni() => match accepted {
                Ok(recv) => {
                    streams.spawn(read_stream(conn.clone(), recv, peer, shared.clone()));
                }
                Err(_) => return Ok(()),
            },
            Some(done) = streams.join_next() => {
                if let Err(join) = done {
                    return Err(format!("stream reader failed: {join}"));
                }
            }
        }
    }
}

/// Read one stream: its class byte, then frames, each handed to the class's receiver.
async fn read_stream(conn: Connection, mut recv: RecvStream, peer: PeerKey, shared: Arc<Shared>) {
    let who = short(&peer);
    let mut class_byte = [0u8; 1];
    if recv.read_exact(&mut class_byte).await.is_err() {
        return;
    }
    let Some(class) = Class::from_wire(class_byte[0]) else {
        warn!(peer = %who, byte = class_byte[0], "stream opened with an unknown class byte; closing the connection");
        conn.close(code(codes::PROTOCOL), b"unknown stream class");
        return;
    };
    let inbox = &shared.inboxes[class.index()];
    let mut inbox_open = true;
    loop {
        let mut prefix = [0u8; 4];
        match recv.read_exact(&mut prefix).await {
            Ok(()) => {}
            Err(ReadExactError::FinishedEarly(0)) => return,
            Err(ReadExactError::FinishedEarly(_)) => {
                warn!(peer = %who, ?class, "stream ended inside a length prefix; closing the connection");
                conn.close(code(codes::PROTOCOL), b"truncated frame");
                return;
            }
            Err(ReadExactError::ReadError(_)) => return,
        }
        let len = u32::from_le_bytes(prefix);
        let len = match usize::try_from(len) {
            Ok(len) if len <= shared.max_frame_bytes => len,
            _ => {
                shared.stats.count_oversized();
                warn!(
                    peer = %who, ?class, len, max = shared.max_frame_bytes,
                    "peer sent a frame over max_frame_bytes; closing the connection"
                );
                conn.close(code(codes::OVERSIZED), b"frame exceeds max_frame_bytes");
                return;
            }
        };
        let payload = match read_payload(&mut recv, len).await {
            Ok(payload) => payload,
            Err(Truncated::Finished) => {
                warn!(peer = %who, ?class, "stream ended inside a frame; closing the connection");
                conn.close(code(codes::PROTOCOL), b"truncated frame");
                return;
            }
            Err(Truncated::Lost) => return,
        };
        let incoming = Incoming {
            from: peer,
            class,
            payload,
        };
        if inbox_open && !inbox.push(incoming).await {
            inbox_open = false;
            debug!(?class, "receiver dropped; discarding frames of this class");
        }
        shared.stats.count_received(class);
    }
}

/// Why a frame's payload could not be read in full.
enum Truncated {
    /// The peer finished the stream mid-frame.
    Finished,
    /// The stream or connection failed.
    Lost,
}

/// Read exactly `len` payload bytes (already checked against `max_frame_bytes`). Memory grows
/// with the bytes actually received, and a frame that arrives in one chunk is not copied.
async fn read_payload(recv: &mut RecvStream, len: usize) -> Result<Bytes, Truncated> {
    let mut buf: Option<BytesMut> = None;
    let mut have = 0usize;
    while have < len {
        let chunk = match recv.read_chunk(len - have, true).await {
            Ok(Some(chunk)) => chunk.bytes,
            Ok(None) => return Err(Truncated::Finished),
            Err(_) => return Err(Truncated::Lost),
        };
        if buf.is_none() && chunk.len() == len {
            return Ok(chunk);
        }
        have += chunk.len();
        buf.get_or_insert_with(|| BytesMut::with_capacity(len.min(READ_CHUNK)))
            .extend_from_slice(&chunk);
    }
    Ok(buf.map(BytesMut::freeze).unwrap_or_default())
}
