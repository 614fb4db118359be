//! Per-client limits of the RPC server: open connections and a token bucket of requests per
//! client, in a table of bounded size. No I/O and no clock: callers pass `now`.
//!
//! A client is an IPv4 address or an IPv6 /64 prefix (one host usually holds a whole /64; an
//! IPv4-mapped IPv6 address counts as the IPv4 address).
//!
//! The bucket holds at most `burst` tokens and gains `rate_per_s` per second; a request of
//! cost `c` (one per JSON-RPC call, so a batch costs its length) takes `c` tokens or is
//! refused. A client absent from the table starts with a full bucket, so an entry with no
//! connection whose bucket is full carries no information and is dropped when the table is
//! full; if none is, the idle entry with the fullest bucket goes. An entry with open
//! connections is never dropped, so with `max_clients >= max_connections` a new client always
//! finds room.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The limits a [`Clients`] table enforces.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClientLimits {
    /// Most connections one client may hold open.
    pub max_connections_per_client: usize,
    /// Tokens a client gains per second.
    pub rate_per_s: f64,
    /// Most tokens a client holds (its largest burst).
    pub burst: f64,
    /// Most clients tracked at once.
    pub max_clients: usize,
}

/// Whom a limit applies to: an IPv4 address or an IPv6 /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    /// The client a peer address belongs to.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => ClientKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    ClientKey(IpAddr::V6(prefix.into()))
                }
            },
        }
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// Why a connection or a request was refused.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Refused {
    /// The client already holds `max_connections_per_client` connections.
    TooManyConnections,
    /// The table is full of clients with open connections.
    TooManyClients,
    /// Not enough tokens; enough will have accrued after this long.
    RateLimited {
        /// When to retry.
        retry_after: Duration,
    },
    /// The cost exceeds the bucket's size: the request can never pass.
    OverBurst,
}

#[derive(Debug)]
struct Entry {
    connections: usize,
    tokens: f64,
    refilled: Instant,
}

impl Entry {
    fn refill(&mut self, limits: &ClientLimits, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * limits.rate_per_s).min(limits.burst);
        self.refilled = now;
    }
}

/// The table of clients. Shared by the accept loop and the request handlers; every operation
/// holds the lock for a few map operations only.
#[derive(Debug)]
pub struct Clients {
    limits: ClientLimits,
    table: Mutex<HashMap<ClientKey, Entry>>,
}

/// One open connection of a client, counted until dropped.
#[derive(Debug)]
pub struct ConnectionGuard {
    clients: Arc<Clients>,
    key: ClientKey,
}

impl ConnectionGuard {
    /// The client holding the connection.
    pub fn key(&self) -> ClientKey {
        self.key
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut table = self.clients.lock();
        if let Some(e) = table.get_mut(&self.key) {
            e.connections = e.connections.saturating_sub(1);
        }
    }
}

impl Clients {
    /// An empty table enforcing `limits`.
    pub fn new(limits: ClientLimits) -> Self {
        Clients {
            limits,
            table: Mutex::new(HashMap::new()),
        }
    }

    /// The limits enforced.
    pub fn limits(&self) -> &ClientLimits {
        &self.limits
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ClientKey, Entry>> {
        // A panic while holding the lock leaves at worst a stale count; keep serving.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Clients tracked.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no client is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Count a new connection of `key`, or refuse it.
    pub fn connect(
        self: &Arc<Self>,
        key: ClientKey,
        now: Instant,
    ) -> Result<ConnectionGuard, Refused> {
        let mut table = self.lock();
        let entry = self.entry(&mut table, key, now)?;
        if entry.connections >= self.limits.max_connections_per_client {
            return Err(Refused::TooManyConnections);
        }
        entry.connections += 1;
        Ok(ConnectionGuard {
            clients: self.clone(),
            key,
        })
    }

    /// Take `cost` tokens from `key`'s bucket, or refuse (taking none).
    pub fn take(&self, key: ClientKey, cost: u64, now: Instant) -> Result<(), Refused> {
        let cost = cost as f64;
        if cost > self.limits.burst {
            return Err(Refused::OverBurst);
        }
        let mut table = self.lock();
        let limits = self.limits;
        let entry = self.entry(&mut table, key, now)?;
        entry.refill(&limits, now);
        if entry.tokens >= cost {
            entry.tokens -= cost;
            return Ok(());
        }
        let missing = cost - entry.tokens;
        let secs = if limits.rate_per_s > 0.0 {
            missing / limits.rate_per_s
        } else {
            f64::from(u32::MAX)
        };
        Err(Refused::RateLimited {
            retry_after: Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX),
        })
    }

    /// `key`'s entry, made (with a full bucket) if absent, evicting as the module docs say.
    fn entry<'t>(
        &self,
        table: &'t mut HashMap<ClientKey, Entry>,
        key: ClientKey,
        now: Instant,
    ) -> Result<&'t mut Entry, Refused> {
        if !table.contains_key(&key) && table.len() >= self.limits.max_clients {
            let limits = self.limits;
            table.retain(|_, e| {
                e.refill(&limits, now);
                e.connections > 0 || e.tokens < limits.burst
            });
            if table.len() >= limits.max_clients {
                let fullest = table
                    .iter()
                    .filter(|(_, e)| e.connections == 0)
                    .max_by(|a, b| a.1.tokens.total_cmp(&b.1.tokens))
                    .map(|(k, _)| *k);
                match fullest {
                    Some(k) => {
                        table.remove(&k);
                    }
                    None => return Err(Refused::TooManyClients),
                }
            }
        }
        Ok(table.entry(key).or_insert(Entry {
            connections: 0,
            tokens: self.limits.burst,
            refilled: now,
        }))
    }
}
