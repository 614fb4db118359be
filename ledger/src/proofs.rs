//! The questions the ledger asks about other chains' blocks, answered by light clients and,
//! on the main chain, by its committee assignment.

use banyan_core::certificate::CommitteeMember;
use banyan_core::ids::{ChainId, Epoch};
use banyan_core::tx::{Acknowledgement, NonDeliveryProof, Packet, PacketProof};
use banyan_core::value::LightClientState;
use std::sync::Arc;

/// Checks proofs about other chains' blocks against this chain's light client of them, and
/// names the committees a checkpoint must be certified by.
///
/// The ledger calls it for `DeliverPacket`, `AcknowledgePacket`, `TimeoutPacket` and
/// `SubmitCheckpoint` and applies the answer; it must be a deterministic function of its
/// arguments (every validator must get the same answer). A [`LightClientState`] equal to its
/// default means this chain has no light client of that chain.
pub trait PacketProofs: Sync {
    /// The committee the main chain assigned sidechain `chain` in main-chain epoch `epoch`, in
    /// committee order (signer bitmaps index it), or `None` when there is none: no such
    /// sidechain, not running then, or this chain takes no checkpoints (the default). The
    /// ledger asks only for epochs up to the current block's, which every node has reached.
    fn assigned_committee(&self, chain: ChainId, epoch: Epoch) -> Option<Vec<CommitteeMember>> {
        let _ = (chain, epoch);
        None
    }

    /// Whether `proof` shows `packet` in a certified block of its source chain. Default: no.
    fn delivery(&self, client: &LightClientState, packet: &Packet, proof: &PacketProof) -> bool {
        let _ = (client, packet, proof);
        false
    }

    /// Whether `proof` shows the destination chain acknowledged `packet` with `ack`. Default:
    /// no.
    fn acknowledgement(
        &self,
        client: &LightClientState,
        packet: &Packet,
        ack: &Acknowledgement,
        proof: &PacketProof,
    ) -> bool {
        let _ = (client, packet, ack, proof);
        false
    }

    /// Whether `proof` shows `packet` was not received by its timeout. Default: no.
    fn non_delivery(
        &self,
        client: &LightClientState,
        packet: &Packet,
        proof: &NonDeliveryProof,
    ) -> bool {
        let _ = (client, packet, proof);
        false
    }
}

/// Refuses every proof: the safe choice for a chain that does not take packets (yet).
#[derive(Clone, Copy, Debug, Default)]
pub struct RejectAllProofs;

impl PacketProofs for RejectAllProofs {}

/// A [`PacketProofs`] shared between the blocks of a chain (each block's ledger holds a clone).
#[derive(Clone)]
pub struct SharedProofs(pub Arc<dyn PacketProofs + Send + Sync>);

impl std::fmt::Debug for SharedProofs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedProofs")
    }
}

impl Default for SharedProofs {
    fn default() -> Self {
        SharedProofs(Arc::new(RejectAllProofs))
    }
}

impl PacketProofs for SharedProofs {
    fn assigned_committee(&self, chain: ChainId, epoch: Epoch) -> Option<Vec<CommitteeMember>> {
        self.0.assigned_committee(chain, epoch)
    }
    fn delivery(&self, client: &LightClientState, packet: &Packet, proof: &PacketProof) -> bool {
        self.0.delivery(client, packet, proof)
    }
    fn acknowledgement(
        &self,
        client: &LightClientState,
        packet: &Packet,
        ack: &Acknowledgement,
        proof: &PacketProof,
    ) -> bool {
        self.0.acknowledgement(client, packet, ack, proof)
    }
    fn non_delivery(
        &self,
        client: &LightClientState,
        packet: &Packet,
        proof: &NonDeliveryProof,
    ) -> bool {
        self.0.non_delivery(client, packet, proof)
    }
}
