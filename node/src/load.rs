//! `banyan load`: open-loop transfer load against one or more nodes, reporting committed
//! throughput and submit-to-commit latency.
//!
//! 1. **Setup.** `--accounts N` account keys are derived deterministically
//!    ([`derive_account_key`]), so repeated runs reuse them. Those holding less than the
//!    funding amount are funded by transfers from the account key of `--keys DIR`, in chunks of
//!    at most [`FUNDING_CHUNK`] transactions (below the node's per-sender mempool limit of
//!    4096), each chunk waiting for the funder's nonce to advance past it.
//! 2. **Run.** Every [`TICK`] the transfers due at `--rate` per second are signed (1 coin
//!    between random accounts, nonces tracked locally) and sent in batches of `--batch`,
//!    round-robin over the `--rpc` URLs, without waiting for commits (open loop). A sender
//!    whose transaction is rejected is retired for the rest of the run (its later nonces
//!    would never commit). With `--presign`, the whole run is drawn and signed before the
//!    window opens (on every core) and only sent during it.
//! 3. **Measure.** A task follows committed blocks on the first URL and matches transaction
//!    ids to their submit time. After `--duration`, stragglers are awaited for at most
//!    [`STRAGGLER_WAIT`].
//! 4. **Report.** Submitted, rejected (by reason), committed, committed TPS (commits seen
//!    during the window / window) and latency percentiles; `--json` prints a [`LoadReport`].

use crate::api::AccountView;
use crate::cli::PasswordArgs;
use crate::client_cmd::{load_keys, resolve_rpc_url};
use crate::progress::Progress;
use crate::rpc::client::{RpcClient, RpcError};
use crate::rpc::NOT_FOUND;
use anyhow::{bail, Context, Result};
use banyan_core::hash::Digest;
use banyan_core::ids::{Address, Amount, AssetId, ChainId, Nonce};
use banyan_core::keys::{AccountPublicKey, AccountSecretKey};
use banyan_core::tx::{SignedTx, TxBody};
use clap::Args;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

/// How often due transactions are sent.
pub const TICK: Duration = Duration::from_millis(10);
/// Most funding transfers pending from the funder at once.
pub const FUNDING_CHUNK: usize = 4000;
/// How long a funding chunk may go without the funder's nonce advancing.
pub const FUNDING_STALL: Duration = Duration::from_secs(60);
/// How long to wait for uncommitted transactions after the run.
pub const STRAGGLER_WAIT: Duration = Duration::from_secs(15);
/// Most submit calls in flight; beyond it transactions are counted as not sent.
pub const MAX_IN_FLIGHT_BATCHES: usize = 256;
/// Most account queries in flight during setup.
const QUERY_CONCURRENCY: usize = 64;
/// Domain prefix of the derived account keys.
pub const KEY_DOMAIN: &[u8] = b"banyan/load";

/// Arguments of `banyan load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Comma-separated URLs of the nodes' JSON-RPC servers; submissions are spread over them,
    /// blocks are followed on the first. Default: BANYAN_RPC, else http://127.0.0.1:8545.
    #[arg(long, value_name = "URL[,URL...]")]
    pub rpc: Option<String>,
    /// Key directory whose account key funds the load accounts.
    #[arg(long, value_name = "FUNDER_DIR")]
    pub keys: PathBuf,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub password: PasswordArgs,
    /// Transactions per second to submit.
    #[arg(long, value_name = "R")]
    pub rate: u64,
    /// How long to submit (e.g. 30s, 2m).
    #[arg(long, value_name = "D", default_value = "30s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Accounts sending and receiving (derived deterministically; at least 2).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub accounts: u64,
    /// Transactions per submit call.
    #[arg(long, value_name = "B", default_value_t = 200)]
    pub batch: usize,
    /// Chain to load (0 is the main chain).
    #[arg(long, value_name = "ID", default_value_t = 0)]
    pub chain: u32,
    /// Fee of every transaction, in native coins.
    #[arg(long, value_name = "F", default_value_t = 1)]
    pub fee: u128,
    /// Coins to give each account. Default: enough for four times its expected share of the
    /// load, plus a margin.
    #[arg(long, value_name = "COINS")]
    pub fund: Option<u128>,
    /// Sign the whole run's transactions before the window opens, on every core, so that
    /// signing does not compete with the nodes for CPU during the window (clients sign on
    /// their own machines; on one box they would share the nodes' cores). Holds
    /// `rate × duration` signed transactions in memory.
    #[arg(long)]
    pub presign: bool,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Most transactions `--presign` holds (about 250 bytes each).
pub const MAX_PRESIGNED: u64 = 4_000_000;

/// The outcome of a load run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadReport {
    /// Target transactions per second.
    pub rate: u64,
    /// Length of the submit window, seconds.
    pub duration_s: f64,
    /// Accounts used.
    pub accounts: u64,
    /// Transactions sent (rejected ones included).
    pub submitted: u64,
    /// Transactions refused or not sent.
    pub rejected: u64,
    /// `rejected` by reason.
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Submitted transactions seen in committed blocks.
    pub committed: u64,
    /// Transactions committed during the window, per second of the window.
    pub committed_tps: f64,
    /// Median submit-to-commit latency, ms (`null` when nothing committed).
    pub p50_ms: Option<f64>,
    /// 99th percentile latency, ms.
    pub p99_ms: Option<f64>,
    /// Largest latency, ms.
    pub max_ms: Option<f64>,
}

/// The `i`-th load account key: the ed25519 seed SHA-256([`KEY_DOMAIN`] || `i` as 8
/// little-endian bytes).
pub fn derive_account_key(i: u64) -> AccountSecretKey {
    let mut h = Sha256::new();
    h.update(KEY_DOMAIN);
    h.update(i.to_le_bytes());
    let seed: [u8; 32] = h.finalize().into();
    AccountSecretKey::from_bytes(&seed)
}

/// The `p`-th percentile (0..=100, nearest-rank method) of ascending `sorted` values; `None`
/// when empty.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// A rejection message as a bounded label: every word containing a digit becomes `N`, so
/// nonces, heights and ids do not make one reason per transaction.
pub fn normalize_reason(message: &str) -> String {
    let mut out = Vec::new();
    for word in message.split_whitespace() {
        let core = word.trim_matches(|c: char| !c.is_alphanumeric());
        if core.chars().any(|c| c.is_ascii_digit()) {
            out.push(word.replace(core, "N"));
        } else {
            out.push(word.to_string());
        }
    }
    let mut s = out.join(" ");
    if s.len() > 160 {
        let mut end = 160;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Run `banyan load` and print its report.
pub fn run(args: LoadArgs, out: &mut dyn Write) -> Result<()> {
    if args.rate == 0 {
        bail!("--rate must be at least 1 transaction per second");
    }
    if args.accounts < 2 {
        bail!("--accounts must be at least 2 (transfers go between accounts)");
    }
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    if args.duration.is_zero() {
        bail!("--duration must be longer than zero, e.g. 30s");
    }
    let urls: Vec<String> = resolve_rpc_url(args.rpc.as_deref())
        .split(',')
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
    if urls.is_empty() {
        bail!("--rpc has no URL; give one or more, comma-separated");
    }
    let (funder, _public) = load_keys(&args.keys, &args.password)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = rt.block_on(run_async(&args, &urls, funder.account))?;
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
    } else {
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} ms"));
        writeln!(
            out,
            "rate {}/s for {:.1}s over {} accounts",
            report.rate, report.duration_s, report.accounts
        )?;
        writeln!(out, "submitted:     {}", report.submitted)?;
        writeln!(out, "rejected:      {}", report.rejected)?;
        for (reason, n) in &report.rejected_by_reason {
            writeln!(out, "  {n:>8}  {reason}")?;
        }
        writeln!(out, "committed:     {}", report.committed)?;
        writeln!(out, "committed tps: {:.1}", report.committed_tps)?;
        writeln!(
            out,
            "latency:       p50 {}  p99 {}  max {}",
            ms(report.p50_ms),
            ms(report.p99_ms),
            ms(report.max_ms)
        )?;
    }
    Ok(())
}

struct Account {
    key: AccountSecretKey,
    public: AccountPublicKey,
    address: Address,
    next_nonce: u64,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<HashMap<[u8; 32], Instant>>,
    rejected: Mutex<BTreeMap<String, u64>>,
    latencies_ms: Mutex<Vec<f64>>,
    committed: AtomicU64,
    committed_in_window: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded data stays consistent even if a holder panicked (plain inserts/removes).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn reject(&self, reason: String, n: u64) {
        *lock(&self.rejected).entry(reason).or_insert(0) += n;
    }
}

fn parse_balance(view: &AccountView) -> Result<u128> {
    view.balance.parse::<u128>().with_context(|| {
        format!(
            "the node reported balance `{}` for {}, not a decimal amount",
            view.balance, view.address
        )
    })
}

async fn query_accounts(
    client: &Arc<RpcClient>,
    chain: ChainId,
    addresses: &[Address],
    what: &str,
) -> Result<Vec<AccountView>> {
    let slots = Arc::new(Semaphore::new(QUERY_CONCURRENCY));
    let mut tasks = JoinSet::new();
    for (i, address) in addresses.iter().copied().enumerate() {
        let client = client.clone();
        let slots = slots.clone();
        tasks.spawn(async move {
            let _permit = slots.acquire_owned().await;
            (i, client.account(chain, address, AssetId::NATIVE).await)
        });
    }
    let mut views: Vec<Option<AccountView>> = vec![None; addresses.len()];
    let progress = Progress::new(what, addresses.len() as u64);
    while let Some(joined) = tasks.join_next().await {
        let (i, result) = joined.context("an account query task failed")?;
        let view = result.with_context(|| format!("cannot read load account {i}"))?;
        if let Some(slot) = views.get_mut(i) {
            *slot = Some(view);
        }
        progress.inc(1);
    }
    progress.finish();
    views
        .into_iter()
        .enumerate()
        .map(|(i, v)| v.with_context(|| format!("no answer for load account {i}")))
        .collect()
}

async fn wait_nonce(
    client: &RpcClient,
    chain: ChainId,
    address: &Address,
    target: u64,
) -> Result<()> {
    let read = || async {
        Ok(client
            .account(chain, *address, AssetId::NATIVE)
            .await
            .context("cannot read the funder's nonce")?
            .nonce)
    };
    wait_for(target, Duration::from_millis(200), read, |nonce| {
        format!(
            "the funder's nonce stayed at {nonce} for {}s while {target} was expected; are \
             blocks being committed (`banyan status`)?",
            FUNDING_STALL.as_secs()
        )
    })
    .await
}

/// Poll `read` every `every` until it reaches `target`; fail with `stalled(value)` once the
/// value has not moved for [`FUNDING_STALL`].
async fn wait_for<F, Fut>(
    target: u64,
    every: Duration,
    mut read: F,
    stalled: impl Fn(u64) -> String,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64>>,
{
    let mut last = None;
    let mut last_progress = Instant::now();
    loop {
        let value = read().await?;
        if value >= target {
            return Ok(());
        }
        if last != Some(value) {
            last = Some(value);
            last_progress = Instant::now();
        } else if last_progress.elapsed() > FUNDING_STALL {
            bail!("{}", stalled(value));
        }
        tokio::time::sleep(every).await;
    }
}

/// The id of the network the node at `client` runs, which every transaction signs.
async fn network_of(client: &RpcClient) -> Result<Digest> {
    client
        .status()
        .await
        .context("cannot read the node's network id (`banyan status`)")?
        .network_id()
}

/// Wait until the node at `url` has committed `height` on `chain`.
async fn wait_height(client: &RpcClient, url: &str, chain: ChainId, height: u64) -> Result<()> {
    let read = || async {
        Ok(client
            .block_on(chain, None)
            .await
            .with_context(|| format!("cannot read the latest block of {url}"))?
            .height)
    };
    wait_for(height, Duration::from_millis(50), read, |at| {
        format!(
            "{url} stayed at height {at} for {}s while the funding committed at {height}; is \
             it catching up (`banyan status --rpc {url}`)? Drop it from --rpc or wait",
            FUNDING_STALL.as_secs()
        )
    })
    .await
}

async fn fund(
    client: &Arc<RpcClient>,
    chain: ChainId,
    network: Digest,
    funder: &AccountSecretKey,
    fee: u128,
    amount: u128,
    recipients: &[Address],
) -> Result<()> {
    let funder_public = funder.public_key();
    let funder_address = funder_public.address();
    let view = client
        .account(chain, funder_address, AssetId::NATIVE)
        .await
        .context("cannot read the funder account")?;
    let balance = parse_balance(&view)?;
    let needed = (amount.saturating_add(fee)).saturating_mul(recipients.len() as u128);
    if balance < needed {
        bail!(
            "the funder {funder_address} holds {balance} coins but funding {} accounts with \
             {amount} each (+ fee {fee}) needs {needed}; use a richer --keys account, fewer \
             --accounts or a smaller --fund",
            recipients.len()
        );
    }
    let mut nonce = view.nonce;
    let progress = Progress::new("funding accounts", recipients.len() as u64);
    for chunk in recipients.chunks(FUNDING_CHUNK) {
        let txs: Vec<SignedTx> = chunk
            .iter()
            .map(|to| {
                let body = TxBody::native_transfer(
                    chain,
                    network,
                    funder_public,
                    Nonce(nonce),
                    Amount(fee),
                    *to,
                    Amount(amount),
                );
                nonce += 1;
                body.sign(funder)
            })
            .collect();
        let results = client.submit_txs(&txs).await?;
        if let Some((i, Err(e))) = results.iter().enumerate().find(|(_, r)| r.is_err()) {
            bail!("a funding transfer (chunk position {i}) was rejected: {e}");
        }
        wait_nonce(client, chain, &funder_address, nonce).await?;
        progress.inc(chunk.len() as u64);
    }
    progress.finish();
    Ok(())
}

async fn follow_blocks(
    client: Arc<RpcClient>,
    chain: ChainId,
    mut next: u64,
    shared: Arc<Shared>,
    window_end: Instant,
    mut stop: watch::Receiver<bool>,
) {
    let mut warned = false;
    while !*stop.borrow() {
        match client.block_on(chain, Some(next)).await {
            Ok(block) => {
                let seen = Instant::now();
                let mut pending = lock(&shared.pending);
                for tx in &block.txs {
                    let mut id = [0u8; 32];
                    if hex::decode_to_slice(&tx.id, &mut id).is_err() {
                        continue;
                    }
                    if let Some(sent) = pending.remove(&id) {
                        lock(&shared.latencies_ms)
                            .push(seen.duration_since(sent).as_secs_f64() * 1000.0);
                        shared.committed.fetch_add(1, Ordering::Relaxed);
                        if seen <= window_end {
                            shared.committed_in_window.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                next += 1;
                continue;
            }
            Err(e) if e.code() == Some(NOT_FOUND) => {}
            Err(e) => {
                if !warned {
                    eprintln!("warning: following blocks on {}: {e}", client.url());
                    warned = true;
                }
            }
        }
        tokio::select! {
            _ = stop.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
}

async fn run_async(
    args: &LoadArgs,
    urls: &[String],
    funder: AccountSecretKey,
) -> Result<LoadReport> {
    let clients = urls
        .iter()
        .map(|u| RpcClient::new(u).map(Arc::new))
        .collect::<Result<Vec<_>, RpcError>>()?;
    let main = clients[0].clone();
    let chain = ChainId(args.chain);
    let network = network_of(&main).await?;
    let n = args.accounts;

    eprintln!("deriving {n} accounts");
    let mut accounts: Vec<Account> = (0..n)
        .map(|i| {
            let key = derive_account_key(i);
            let public = key.public_key();
            Account {
                address: public.address(),
                public,
                key,
                next_nonce: 0,
            }
        })
        .collect();
    let addresses: Vec<Address> = accounts.iter().map(|a| a.address).collect();
    let views = query_accounts(&main, chain, &addresses, "reading accounts").await?;

    let expected_per_account = (args.rate as f64 * args.duration.as_secs_f64() / n as f64).ceil();
    let per_account = match args.fund {
        Some(f) => f,
        None => (args.fee.saturating_add(1)).saturating_mul(
            (expected_per_account as u128)
                .saturating_mul(4)
                .saturating_add(16),
        ),
    };
    let mut to_fund = Vec::new();
    for (account, view) in accounts.iter_mut().zip(&views) {
        account.next_nonce = view.nonce;
        if parse_balance(view)? < per_account {
            to_fund.push(account.address);
        }
    }
    if to_fund.is_empty() {
        eprintln!("all {n} accounts already hold at least {per_account} coins");
    } else {
        eprintln!(
            "funding {} accounts with {per_account} coins each",
            to_fund.len()
        );
        fund(
            &main,
            chain,
            network,
            &funder,
            args.fee,
            per_account,
            &to_fund,
        )
        .await?;
        let after = query_accounts(&main, chain, &to_fund, "checking funding").await?;
        let short = after
            .iter()
            .map(parse_balance)
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .filter(|b| *b < per_account)
            .count();
        if short > 0 {
            bail!(
                "{short} accounts are still unfunded although the funding transfers committed; \
                 see `banyan query block` for their failure reason"
            );
        }
        // Every node admits against its own committed state: wait until each has committed
        // the funding, or its first transactions would be refused as unpayable.
        let funded_at = main
            .block_on(chain, None)
            .await
            .context("cannot read the latest block")?
            .height;
        for (url, client) in urls.iter().zip(&clients).skip(1) {
            wait_height(client, url, chain, funded_at).await?;
        }
    }

    // Run.
    let n_usize = usize::try_from(n).context("--accounts is too large for this machine")?;
    let mut rng = StdRng::from_entropy();
    let mut presigned = if args.presign {
        let total = (args.rate as f64 * args.duration.as_secs_f64()).ceil() as u64;
        if total > MAX_PRESIGNED {
            bail!(
                "--presign would hold {total} transactions (rate × duration); at most \
                 {MAX_PRESIGNED}: shorten --duration or drop --presign"
            );
        }
        let all: Vec<usize> = (0..n_usize).collect();
        let bodies: Vec<(usize, TxBody)> = (0..total)
            .map(|_| next_transfer(&mut accounts, &all, &mut rng, chain, network, args.fee))
            .collect();
        let progress = Progress::new("signing transactions", total);
        let signed = sign_all(&accounts, bodies, &progress);
        progress.finish();
        Some(signed.into_iter())
    } else {
        None
    };
    let shared = Arc::new(Shared::default());
    let start_height = main
        .block_on(chain, None)
        .await
        .context("cannot read the latest block")?
        .height;
    let t0 = Instant::now();
    let window_end = t0 + args.duration;
    let (stop_tx, stop_rx) = watch::channel(false);
    let follower = tokio::spawn(follow_blocks(
        main.clone(),
        chain,
        start_height + 1,
        shared.clone(),
        window_end,
        stop_rx,
    ));
    eprintln!(
        "sending {} tx/s for {} from {} accounts",
        args.rate,
        humantime::format_duration(args.duration),
        n
    );

    let accounts = Arc::new(Mutex::new(accounts));
    let mut active: Vec<usize> = (0..n_usize).collect();
    let mut position: Vec<Option<usize>> = (0..n_usize).map(Some).collect();
    let (retire_tx, mut retire_rx) = mpsc::unbounded_channel::<usize>();
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT_BATCHES));
    let mut tasks = JoinSet::new();
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut sent: u64 = 0;
    let mut round_robin = 0usize;
    loop {
        interval.tick().await;
        let now = Instant::now();
        if now >= window_end {
            break;
        }
        while let Ok(i) = retire_rx.try_recv() {
            if let Some(pos) = position.get_mut(i).and_then(Option::take) {
                active.swap_remove(pos);
                if let Some(moved) = active.get(pos) {
                    position[*moved] = Some(pos);
                }
            }
        }
        if active.len() < 2 {
            eprintln!("warning: fewer than 2 accounts left that are not retired; stopping early");
            break;
        }
        let target = (args.rate as f64 * now.duration_since(t0).as_secs_f64()) as u64;
        let mut due = target.saturating_sub(sent);
        while due > 0 {
            let size = due.min(args.batch as u64);
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                shared.reject(
                    "not sent: too many submit calls in flight (the nodes are not keeping up)"
                        .into(),
                    due,
                );
                sent += due;
                break;
            };
            due -= size;
            sent += size;
            let mut batch = Vec::with_capacity(size as usize);
            let mut senders = Vec::with_capacity(size as usize);
            match presigned.as_mut() {
                Some(queue) => {
                    let mut skipped = 0;
                    let mut pending = lock(&shared.pending);
                    while batch.len() < size as usize {
                        let Some((s, tx)) = queue.next() else { break };
                        // A retired sender's later nonces can never commit.
                        if position[s].is_none() {
                            skipped += 1;
                            continue;
                        }
                        pending.insert(tx.id().0, Instant::now());
                        batch.push(tx);
                        senders.push(s);
                    }
                    drop(pending);
                    if skipped > 0 {
                        shared.reject("not sent: its sender was retired".into(), skipped);
                    }
                }
                None => {
                    let mut accounts = lock(&accounts);
                    let mut pending = lock(&shared.pending);
                    for _ in 0..size {
                        let (s, body) = next_transfer(
                            &mut accounts,
                            &active,
                            &mut rng,
                            chain,
                            network,
                            args.fee,
                        );
                        let tx = body.sign(&accounts[s].key);
                        pending.insert(tx.id().0, Instant::now());
                        batch.push(tx);
                        senders.push(s);
                    }
                }
            }
            if batch.is_empty() {
                break;
            }
            let client = clients[round_robin % clients.len()].clone();
            round_robin = round_robin.wrapping_add(1);
            let shared = shared.clone();
            let retire = retire_tx.clone();
            tasks.spawn(async move {
                let _permit = permit;
                match client.submit_txs(&batch).await {
                    Ok(results) => {
                        for ((tx, s), r) in batch.iter().zip(&senders).zip(results) {
                            if let Err(e) = r {
                                lock(&shared.pending).remove(&tx.id().0);
                                shared.reject(normalize_reason(&e.to_string()), 1);
                                let _ = retire.send(*s);
                            }
                        }
                    }
                    Err(e) => {
                        {
                            let mut pending = lock(&shared.pending);
                            for tx in &batch {
                                pending.remove(&tx.id().0);
                            }
                        }
                        shared.reject(normalize_reason(&e.to_string()), batch.len() as u64);
                        for s in senders {
                            let _ = retire.send(s);
                        }
                    }
                }
            });
        }
        while tasks.try_join_next().is_some() {}
    }
    let window = t0.elapsed().min(args.duration).max(TICK);

    // Stragglers.
    let deadline = Instant::now() + STRAGGLER_WAIT;
    let _ = tokio::time::timeout(STRAGGLER_WAIT, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    while Instant::now() < deadline && !lock(&shared.pending).is_empty() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop_tx.send(true);
    let _ = follower.await;

    let rejected_by_reason = lock(&shared.rejected).clone();
    let rejected = rejected_by_reason.values().sum();
    let mut latencies = lock(&shared.latencies_ms).clone();
    latencies.sort_by(f64::total_cmp);
    Ok(LoadReport {
        rate: args.rate,
        duration_s: window.as_secs_f64(),
        accounts: n,
        submitted: sent,
        rejected,
        rejected_by_reason,
        committed: shared.committed.load(Ordering::Relaxed),
        committed_tps: shared.committed_in_window.load(Ordering::Relaxed) as f64
            / window.as_secs_f64(),
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        max_ms: latencies.last().copied(),
    })
}

/// The next transfer of the load: 1 coin between two distinct random accounts of `active`,
/// at the sender's next nonce (which it advances). Returns the sender's index.
fn next_transfer(
    accounts: &mut [Account],
    active: &[usize],
    rng: &mut StdRng,
    chain: ChainId,
    network: Digest,
    fee: u128,
) -> (usize, TxBody) {
    let s = active[rng.gen_range(0..active.len())];
    let mut r = active[rng.gen_range(0..active.len())];
    while r == s {
        r = active[rng.gen_range(0..active.len())];
    }
    let to = accounts[r].address;
    let from = &mut accounts[s];
    let body = TxBody::native_transfer(
        chain,
        network,
        from.public,
        Nonce(from.next_nonce),
        Amount(fee),
        to,
        Amount(1),
    );
    from.next_nonce += 1;
    (s, body)
}

/// Sign `bodies` (each with its sender's index) on every core, keeping their order.
fn sign_all(
    accounts: &[Account],
    bodies: Vec<(usize, TxBody)>,
    progress: &Progress,
) -> Vec<(usize, SignedTx)> {
    /// Signatures between two progress updates.
    const STEP: usize = 1024;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = bodies.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = bodies
            .chunks(chunk)
            .map(|part| {
                let progress = progress.clone();
                scope.spawn(move || {
                    let mut signed = Vec::with_capacity(part.len());
                    for step in part.chunks(STEP) {
                        signed.extend(
                            step.iter()
                                .map(|(s, body)| (*s, body.clone().sign(&accounts[*s].key))),
                        );
                        progress.inc(step.len() as u64);
                    }
                    signed
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn percentile_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 51.0), Some(3.0));
        assert_eq!(percentile(&[], 50.0), None);
        // Out-of-range percentiles are clamped rather than indexing out of bounds.
        assert_eq!(percentile(&v, 250.0), Some(100.0));
        assert_eq!(percentile(&v, -3.0), Some(1.0));
    }

    #[test]
    fn derived_accounts_are_deterministic_and_distinct() {
        let a = derive_account_key(7).public_key().address();
        let b = derive_account_key(7).public_key().address();
        assert_eq!(a, b);
        let mut seed = Sha256::new();
        seed.update(b"banyan/load");
        seed.update(7u64.to_le_bytes());
        let seed: [u8; 32] = seed.finalize().into();
        assert_eq!(*derive_account_key(7).to_bytes(), seed);
        let addresses: HashSet<Address> = (0..1000)
            .map(|i| derive_account_key(i).public_key().address())
            .collect();
        assert_eq!(addresses.len(), 1000);
    }

    #[test]
    fn reasons_are_bounded() {
        assert_eq!(
            normalize_reason(
                "transaction rejected: stale nonce 5, expected 17 (JSON-RPC error -32003)"
            ),
            "transaction rejected: stale nonce N, expected N (JSON-RPC error -N)"
        );
        assert_eq!(
            normalize_reason("transaction rejected: mempool full"),
            "transaction rejected: mempool full"
        );
        assert!(normalize_reason(&"x".repeat(1000)).len() <= 160);
    }
}
