//! The node's Prometheus metrics: one registry, rendered in the text format on `/metrics`.
//!
//! Names follow Prometheus conventions: the `banyan_` prefix, base units (seconds),
//! `_total` on counters. Labels are bounded: `chain` (chains this node runs), `reason` /
//! `kind` / `class` / `method` / `outcome` (fixed sets chosen by the code, never user input).

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Every metric the node exports.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// `banyan_chain_height{chain}`: height of the last committed block.
    pub height: IntGaugeVec,
    /// `banyan_consensus_round{chain}`: current round.
    pub round: IntGaugeVec,
    /// `banyan_consensus_epoch{chain}`: current epoch.
    pub epoch: IntGaugeVec,
    /// `banyan_commit_latency_seconds{chain}`: proposer timestamp to local commit.
    pub commit_latency: HistogramVec,
    /// `banyan_blocks_committed_total{chain}`.
    pub blocks_committed: IntCounterVec,
    /// `banyan_txs_committed_total{chain}`.
    pub txs_committed: IntCounterVec,
    /// `banyan_mempool_txs{chain}`: transactions waiting.
    pub mempool_txs: IntGaugeVec,
    /// `banyan_mempool_rejected_total{chain,reason}`.
    pub mempool_rejected: IntCounterVec,
    /// `banyan_tx_signature_checks_total{chain,stage}`: transaction signatures checked at
    /// `admission` (RPC and gossip) and in `block`s from other proposers.
    pub signature_checks: IntCounterVec,
    /// `banyan_tx_signature_checks_spared_total{chain}`: admission checks not run because a
    /// block check had verified the same transaction.
    pub signature_checks_spared: IntCounterVec,
    /// `banyan_peers_connected`.
    pub peers: IntGauge,
    /// `banyan_qc_verify_seconds`: time to check one quorum certificate's aggregate.
    pub qc_verify: Histogram,
    /// `banyan_block_execute_seconds{chain,stage}`: executing a block (`propose`, `verify`).
    pub execute: HistogramVec,
    /// `banyan_block_persist_seconds{chain}`: writing a committed block and its state.
    pub persist: HistogramVec,
    /// `banyan_consensus_messages_rejected_total{chain,kind}`.
    pub consensus_rejected: IntCounterVec,
    /// `banyan_consensus_evidence_total{chain}`: equivocations seen.
    pub evidence: IntCounterVec,
    /// `banyan_consensus_evidence_reported_total{chain}`: reports of them this node sent.
    pub evidence_reported: IntCounterVec,
    /// `banyan_net_frames_dropped_total{class}`: frames dropped on full queues.
    pub net_dropped: IntCounterVec,
    /// `banyan_net_frames_shed_total{chain,class}`: incoming frames dropped because their
    /// chain's share of the class's receive queue was full.
    pub net_shed: IntCounterVec,
    /// `banyan_rpc_requests_total{method,outcome}`.
    pub rpc_requests: IntCounterVec,
    /// `banyan_rpc_request_seconds{method}`.
    pub rpc_latency: HistogramVec,
    /// `banyan_up`: 1 while the node runs.
    pub up: IntGauge,
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, m: T) -> T {
    // Registration fails only on a duplicate name, which the fixed set below never has.
    r.register(Box::new(m.clone()))
        .expect("metric names are unique by construction");
    m
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Self {
        let r = Registry::new();
        let lat = vec![
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0,
        ];
        let fast = vec![
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
        ];
        let gauge = |n: &str, h: &str, l: &[&str]| {
            IntGaugeVec::new(Opts::new(n, h), l).expect("valid metric name and labels")
        };
        let counter = |n: &str, h: &str, l: &[&str]| {
            IntCounterVec::new(Opts::new(n, h), l).expect("valid metric name and labels")
        };
        let hist = |n: &str, h: &str, l: &[&str], b: &[f64]| {
            HistogramVec::new(HistogramOpts::new(n, h).buckets(b.to_vec()), l)
                .expect("valid metric name and labels")
        };
        let m = Metrics {
            height: reg(
                &r,
                gauge(
                    "banyan_chain_height",
                    "Height of the last committed block.",
                    &["chain"],
                ),
            ),
            round: reg(
                &r,
                gauge(
                    "banyan_consensus_round",
                    "Current consensus round.",
                    &["chain"],
                ),
            ),
            epoch: reg(
                &r,
                gauge("banyan_consensus_epoch", "Current epoch.", &["chain"]),
            ),
            commit_latency: reg(
                &r,
                hist(
                    "banyan_commit_latency_seconds",
                    "Time from a block's proposal timestamp to its local commit.",
                    &["chain"],
                    &lat,
                ),
            ),
            blocks_committed: reg(
                &r,
                counter(
                    "banyan_blocks_committed_total",
                    "Blocks committed.",
                    &["chain"],
                ),
            ),
            txs_committed: reg(
                &r,
                counter(
                    "banyan_txs_committed_total",
                    "Transactions committed.",
                    &["chain"],
                ),
            ),
            mempool_txs: reg(
                &r,
                gauge(
                    "banyan_mempool_txs",
                    "Transactions waiting in the mempool.",
                    &["chain"],
                ),
            ),
            mempool_rejected: reg(
                &r,
                counter(
                    "banyan_mempool_rejected_total",
                    "Transactions refused by the mempool.",
                    &["chain", "reason"],
                ),
            ),
            signature_checks: reg(
                &r,
                counter(
                    "banyan_tx_signature_checks_total",
                    "Transaction signatures checked, by stage (admission, block).",
                    &["chain", "stage"],
                ),
            ),
            signature_checks_spared: reg(
                &r,
                counter(
                    "banyan_tx_signature_checks_spared_total",
                    "Admission signature checks not run: a block check had verified the same \
                     transaction.",
                    &["chain"],
                ),
            ),
            peers: reg(
                &r,
                IntGauge::new("banyan_peers_connected", "Peers connected over QUIC.")
                    .expect("valid metric name"),
            ),
            qc_verify: reg(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "banyan_qc_verify_seconds",
                        "Time to verify one aggregate signature of a quorum certificate.",
                    )
                    .buckets(fast.clone()),
                )
                .expect("valid metric name"),
            ),
            execute: reg(
                &r,
                hist(
                    "banyan_block_execute_seconds",
                    "Time to execute a block's transactions and compute its state root.",
                    &["chain", "stage"],
                    &fast,
                ),
            ),
            persist: reg(
                &r,
                hist(
                    "banyan_block_persist_seconds",
                    "Time to write a committed block and its state changes.",
                    &["chain"],
                    &fast,
                ),
            ),
            consensus_rejected: reg(
                &r,
                counter(
                    "banyan_consensus_messages_rejected_total",
                    "Consensus messages dropped as invalid, stale or duplicate.",
                    &["chain", "kind"],
                ),
            ),
            evidence: reg(
                &r,
                counter(
                    "banyan_consensus_evidence_total",
                    "Equivocations (double proposals or votes) detected.",
                    &["chain"],
                ),
            ),
            evidence_reported: reg(
                &r,
                counter(
                    "banyan_consensus_evidence_reported_total",
                    "Equivocation reports this node signed and sent (one per offending account).",
                    &["chain"],
                ),
            ),
            net_dropped: reg(
                &r,
                counter(
                    "banyan_net_frames_dropped_total",
                    "Outgoing frames dropped because a peer's queue was full.",
                    &["class"],
                ),
            ),
            net_shed: reg(
                &r,
                counter(
                    "banyan_net_frames_shed_total",
                    "Incoming frames dropped because their chain's share of the receive queue was full.",
                    &["chain", "class"],
                ),
            ),
            rpc_requests: reg(
                &r,
                counter(
                    "banyan_rpc_requests_total",
                    "JSON-RPC requests served.",
                    &["method", "outcome"],
                ),
            ),
            rpc_latency: reg(
                &r,
                hist(
                    "banyan_rpc_request_seconds",
                    "Time to serve a JSON-RPC request.",
                    &["method"],
                    &fast,
                ),
            ),
            up: reg(
                &r,
                IntGauge::new("banyan_up", "1 while the node runs.").expect("valid metric name"),
            ),
            registry: r,
        };
        m.up.set(1);
        m
    }

    /// The text exposition format (`text/plain; version=0.0.4`).
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail on I/O; a metric family that cannot be encoded
        // would be a bug in the fixed set above.
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
