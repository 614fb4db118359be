//! A single replica fed untrusted input: every bad message is a typed error and changes
//! nothing.

use banyan_consensus::sim::{genesis_block, make_committee, member_key};
use banyan_consensus::types::proposal_message;
use banyan_consensus::{
    ConsensusError, DirectVerifier, EmptyBlocks, Environment, Input, MemoryBlockStore,
    MemorySafetyStorage, Message, Output, Proposal, Replica, ReplicaConfig, RoundRobin, Vote,
};
use banyan_core::certificate::{Committee, QuorumCertificate, VoteData};
use banyan_core::codec::BoundedVec;
use banyan_core::header::{Block, BlockHeader};
use banyan_core::ids::{ChainId, Epoch, Height, Round};

const N: usize = 4;

fn replica(me: usize, committee: &Committee) -> (Replica, Vec<Output>) {
    let env = Environment {
        app: Box::new(EmptyBlocks::default()),
        leaders: Box::new(RoundRobin::new(N)),
        verifier: Box::new(DirectVerifier),
        safety_storage: Box::new(MemorySafetyStorage::default()),
        blocks: Box::new(MemoryBlockStore::default()),
    };
    let mut r = Replica::new(
        ReplicaConfig::default(),
        committee.clone(),
        me,
        member_key(me),
        genesis_block(ChainId::MAIN, Epoch(0)),
        env,
    )
    .expect("replica");
    let mut out = Vec::new();
    r.start(0, &mut out).expect("start");
    (r, out)
}

/// The proposal member 1 (round-robin leader of round 1) makes at time 0.
fn first_proposal(committee: &Committee) -> Proposal {
    let (_, out) = replica(1, committee);
    out.into_iter()
        .find_map(|o| match o {
            Output::Broadcast(Message::Proposal(p)) => Some(*p),
            _ => None,
        })
        .expect("leader of round 1 proposes on start")
}

fn deliver(
    r: &mut Replica,
    from: usize,
    message: Message,
) -> (Result<(), ConsensusError>, Vec<Output>) {
    let mut out = Vec::new();
    let res = r.handle(10, Input::Message { from, message }, &mut out);
    (res, out)
}

#[test]
fn a_valid_proposal_gets_a_vote_to_the_next_leader() {
    let c = make_committee(N, Epoch(0)).expect("committee");
    let p = first_proposal(&c);
    let (mut r, _) = replica(3, &c);
    let (res, out) = deliver(&mut r, 1, Message::Proposal(Box::new(p)));
    res.expect("accepted");
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Send {
            to: 2,
            message: Message::Vote(_)
        }
    )));
}

#[test]
fn bad_proposals_are_refused() {
    let c = make_committee(N, Epoch(0)).expect("committee");
    let p = first_proposal(&c);
    let (mut r, _) = replica(3, &c);

    let mut bad = p.clone();
    bad.signature = member_key(1).sign(b"something else");
    let (res, _) = deliver(&mut r, 1, Message::Proposal(Box::new(bad)));
    assert_eq!(res, Err(ConsensusError::BadSignature("proposal")));

    let mut other_chain = p.clone();
    other_chain.block.header.chain = ChainId(9);
    let (res, _) = deliver(&mut r, 1, Message::Proposal(Box::new(other_chain)));
    assert!(matches!(res, Err(ConsensusError::WrongChain { .. })));

    // Signed by member 2, who does not lead round 1.
    let mut impostor = p.clone();
    impostor.block.header.proposer = member_key(2).public_key().validator_id();
    let (res, _) = deliver(&mut r, 2, Message::Proposal(Box::new(impostor)));
    assert!(matches!(res, Err(ConsensusError::NotLeader { .. })));

    // Skipping rounds without a TC.
    let mut skip = p.clone();
    skip.block.header.round = Round(5);
    let (res, _) = deliver(&mut r, 1, Message::Proposal(Box::new(skip)));
    assert!(matches!(res, Err(ConsensusError::InvalidProposal(_))));

    let (res, _) = deliver(&mut r, 99, Message::Proposal(Box::new(p.clone())));
    assert!(matches!(res, Err(ConsensusError::UnknownSigner { .. })));

    // Nothing above changed the replica: the real proposal is still voted for.
    let (res, _) = deliver(&mut r, 1, Message::Proposal(Box::new(p)));
    res.expect("accepted after the junk");
}

#[test]
fn forged_certificates_are_refused() {
    let c = make_committee(N, Epoch(0)).expect("committee");
    let parent = first_proposal(&c).block;
    // A QC for the round-1 block signed by one member only, but claiming a quorum.
    let data = VoteData {
        chain: ChainId::MAIN,
        epoch: Epoch(0),
        round: Round(1),
        height: Height(1),
        block: parent.header.id(),
    };
    let sig = member_key(0).sign(data.signing_message().as_bytes());
    let qc = QuorumCertificate::aggregate(&c, data, &[(0, sig), (1, sig), (2, sig)])
        .expect("aggregate (unchecked)");
    let header = BlockHeader {
        round: Round(2),
        height: Height(2),
        parent: parent.header.id(),
        proposer: member_key(2).public_key().validator_id(),
        timestamp_ms: 5,
        ..parent.header.clone()
    };
    let block = Block {
        header,
        txs: BoundedVec::new(Vec::new()).expect("empty"),
    };
    let id = block.header.id();
    let p = Proposal {
        block,
        justify: Some(qc),
        tc: None,
        signature: member_key(2)
            .sign(proposal_message(ChainId::MAIN, Epoch(0), Round(2), &id).as_bytes()),
    };
    let (mut r, _) = replica(3, &c);
    let (res, _) = deliver(&mut r, 2, Message::Proposal(Box::new(p)));
    assert!(
        matches!(res, Err(ConsensusError::Certificate(_))),
        "{res:?}"
    );
    assert_eq!(r.status().high_qc_round, Round(0));
}

#[test]
fn votes_for_someone_else_or_from_nobody_are_refused() {
    let c = make_committee(N, Epoch(0)).expect("committee");
    let p = first_proposal(&c);
    let data = VoteData {
        chain: ChainId::MAIN,
        epoch: Epoch(0),
        round: Round(1),
        height: Height(1),
        block: p.block.header.id(),
    };
    let v = Vote {
        data,
        signer: 0,
        signature: member_key(0).sign(data.signing_message().as_bytes()),
        proposal_signature: p.signature,
    };
    // Member 3 does not lead round 2.
    let (mut r3, _) = replica(3, &c);
    let (res, _) = deliver(&mut r3, 0, Message::Vote(Box::new(v)));
    assert_eq!(res, Err(ConsensusError::NotNextLeader(Round(1))));
    // Member 2 does, but not for a signer outside the committee.
    let (mut r2, _) = replica(2, &c);
    let mut ghost = v;
    ghost.signer = 77;
    let (res, _) = deliver(&mut r2, 0, Message::Vote(Box::new(ghost)));
    assert!(matches!(res, Err(ConsensusError::UnknownSigner { .. })));
}

#[test]
fn undecodable_bytes_are_refused() {
    assert!(matches!(
        Message::decode(&[0xff; 7]),
        Err(ConsensusError::Codec(_))
    ));
    let c = make_committee(N, Epoch(0)).expect("committee");
    let p = first_proposal(&c);
    let bytes = Message::Proposal(Box::new(p.clone())).encode();
    assert_eq!(
        Message::decode(&bytes).expect("round trip"),
        Message::Proposal(Box::new(p))
    );
    let mut corrupt = bytes.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x55; // inside the proposal signature: not a curve point any more
    assert!(Message::decode(&corrupt).is_err());
    let mut longer = bytes;
    longer.push(0);
    assert!(Message::decode(&longer).is_err());
}
