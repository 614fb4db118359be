//! End to end: a validator's double vote and double proposal, written as evidence files, are
//! reported with `banyan validator report-equivocation`; the running chain slashes the
//! validator's stake once for each offence (a replayed report is refused) and leaves it out
//! of the next epoch's committee, and the remaining three keep committing.

mod cluster;

use banyan_core::certificate::proposal_message;
use banyan_core::certificate::VoteData;
use banyan_core::hash::Digest;
use banyan_core::ids::{ChainId, Epoch, Height, Round};
use banyan_core::tx::{ProposalEquivocation, SignedProposal, SignedVote, VoteEquivocation};
use banyan_node::client_cmd::EvidenceFile;
use banyan_node::devnet::VALIDATOR_STAKE;
use cluster::Cluster;
use std::time::Duration;

const START: Duration = Duration::from_secs(90);
const COMMIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reported_double_vote_slashes_and_removes_the_validator() {
    let _serial = cluster::SERIAL.lock().await;
    let mut c = Cluster::create(4, 0, 20);
    c.start_all(4);
    for i in 0..4 {
        c.wait_height(i, 1, START).await;
    }
    let v = c.validators(0).await;
    assert_eq!(v.committee.len(), 4);
    let (offender, offender_pub) = c.node_keys(1);
    let offender_id = offender_pub.validator_id.to_hex();

    // Validator 1 signs votes for two blocks in one round of the current epoch.
    let vote = |block: u8| {
        let data = VoteData {
            chain: ChainId::MAIN,
            epoch: Epoch(v.epoch),
            round: Round(1_000_000),
            height: Height(1),
            block: Digest([block; 32]),
        };
        SignedVote {
            data,
            signature: offender.bls.sign(data.signing_message().as_bytes()),
        }
    };
    let evidence = VoteEquivocation {
        validator_key: offender_pub.bls_pubkey,
        first: vote(1),
        second: vote(2),
    };
    let file = c.dir.path().join("evidence.json");
    std::fs::write(
        &file,
        serde_json::to_string_pretty(&EvidenceFile::of(&evidence, None)).expect("json"),
    )
    .expect("write evidence");

    // The demo account reports it; the offender's account is found in the registry.
    let id = report(&c, &file, None).await;
    let (t, epoch_of_report) = committed_tx(&c, &id).await;
    assert!(t.applied, "{t:?}");
    assert_eq!(t.kind, "report_equivocation");
    // The same evidence again, right away, is refused by the chain (fee charged, nothing
    // slashed).
    let offender_address = offender_pub.account_address.to_hex();
    let id = report(&c, &file, Some(&offender_address)).await;
    let (t, _) = committed_tx(&c, &id).await;
    assert!(!t.applied);
    assert!(
        t.failure
            .as_deref()
            .is_some_and(|f| f.contains("AlreadySlashed")),
        "{t:?}"
    );
    // Validator 1 also proposes two blocks in one round: another offence, slashed again.
    let proposal = |block: u8| {
        let block = Digest([block; 32]);
        let (epoch, round) = (Epoch(v.epoch), Round(1_000_001));
        SignedProposal {
            chain: ChainId::MAIN,
            epoch,
            round,
            block,
            signature: offender
                .bls
                .sign(proposal_message(ChainId::MAIN, epoch, round, &block).as_bytes()),
        }
    };
    let proposals = ProposalEquivocation {
        validator_key: offender_pub.bls_pubkey,
        first: proposal(3),
        second: proposal(4),
    };
    let file = c.dir.path().join("proposals.json");
    std::fs::write(
        &file,
        serde_json::to_string_pretty(&EvidenceFile::of_proposals(&proposals, None)).expect("json"),
    )
    .expect("write evidence");
    let id = report(&c, &file, None).await;
    let (t, _) = committed_tx(&c, &id).await;
    assert!(t.applied, "{t:?}");
    assert_eq!(t.kind, "report_proposal_equivocation");
    // From the next epoch on, the committee is the other three, and they keep committing; 5%
    // of the offender's stake was burned.
    let start = std::time::Instant::now();
    let v = loop {
        let v = c.validators(0).await;
        if v.epoch > epoch_of_report {
            break v;
        }
        assert!(start.elapsed() < COMMIT, "no epoch change: {v:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(v.committee.len(), 3, "{v:?}");
    assert!(v.committee.iter().all(|m| m.validator_id != offender_id));
    // (The node's registry view is rebuilt at epoch changes.)
    let rec = v
        .registry
        .iter()
        .find(|m| m.validator_id == offender_id)
        .expect("still registered");
    let once = VALIDATOR_STAKE - VALIDATOR_STAKE / 20;
    assert_eq!(rec.stake, (once - once / 20).to_string());

    let h = c.height(0).await.expect("up");
    c.wait_height(0, h + 3, COMMIT).await;

    for i in 0..4 {
        c.stop(i);
    }
}

/// Report the evidence in `file` from the demo account (against `offender`, else the account
/// the node's registry names) and wait for it to commit; the transaction id.
async fn report(c: &Cluster, file: &std::path::Path, offender: Option<&str>) -> String {
    let mut cmd = std::process::Command::new(cluster::EXE);
    cmd.args(["validator", "report-equivocation", "--evidence"])
        .arg(file);
    if let Some(a) = offender {
        cmd.args(["--offender", a]);
    }
    cmd.arg("--keys")
        .arg(c.layout.demo())
        .arg("--password-file")
        .arg(c.layout.password())
        .args(["--rpc", &c.nodes[0].rpc_url(), "--fee", "1", "--wait"]);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run banyan validator report-equivocation");
    assert!(
        out.status.success(),
        "report-equivocation failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The committed transaction `id` and the epoch of its block. The command waited for the
/// sender's nonce to move, which node 0's state shows a moment before its status does: look
/// again for a few seconds before giving up.
async fn committed_tx(c: &Cluster, id: &str) -> (banyan_node::api::TxView, u64) {
    let started = std::time::Instant::now();
    let mut searched_from = 1;
    loop {
        let tip = c.height(0).await.expect("up");
        for h in (searched_from..=tip).rev() {
            let b = c.block(0, h).await;
            if let Some(t) = b.txs.into_iter().find(|t| t.id == id) {
                return (t, b.epoch);
            }
        }
        searched_from = tip.max(1);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "transaction {id} is in no committed block up to {tip}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
