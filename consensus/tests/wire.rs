//! Wire formats pinned by conformance hashes: a silent change of an encoding fails here.

use banyan_consensus::sim::{genesis_block, member_key};
use banyan_consensus::{Message, TimeoutData, Vote};
use banyan_core::certificate::VoteData;
use banyan_core::hash::{hash, Digest, Domain};
use banyan_core::ids::{ChainId, Epoch, Height, Round};

fn pin(m: &Message) -> String {
    hash(Domain::Custom("banyan/test/wire"), &m.encode()).to_hex()
}

fn vote() -> Message {
    let data = VoteData {
        chain: ChainId(3),
        epoch: Epoch(2),
        round: Round(17),
        height: Height(16),
        block: Digest([0xab; 32]),
    };
    let k = member_key(1);
    Message::Vote(Box::new(Vote {
        data,
        signer: 1,
        signature: k.sign(data.signing_message().as_bytes()),
        proposal_signature: member_key(2).sign(b"proposal"),
    }))
}

#[test]
fn encodings_are_pinned() {
    let t = TimeoutData {
        chain: ChainId(3),
        epoch: Epoch(2),
        round: Round(17),
        high_qc_round: Round(15),
    };
    let sync = Message::SyncResponse(banyan_consensus::SyncResponse {
        blocks: banyan_core::codec::BoundedVec::new(vec![genesis_block(ChainId(3), Epoch(0))])
            .expect("fits"),
    });
    let got = [
        pin(&vote()),
        t.signing_message().to_hex(),
        pin(&sync),
        pin(&Message::EpochProofRequest(Epoch(9))),
    ];
    assert_eq!(got, PINNED);
}

const PINNED: [&str; 4] = [
    "6f4b26e42a83686cfeeb017ef3b3439ffe87ed4168e91d998380828f47fca246",
    "f32fd3c9e8dc9f5950719e8f7581f2660dacee37469e4aca78159b6146e45de9",
    "09253bd5d4571c46c56a7c4aa83cce59cd88e86ee647fce6f74c70fe8b156b83",
    "e82f9e47e93c5d7cf79944732a6ac9a080c479b959ae5b05aab27aa257744520",
];
