//! The question the ledger asks about other chains' blocks, answered by light clients.

use banyan_core::tx::{Acknowledgement, NonDeliveryProof, Packet, PacketProof};
use banyan_core::value::LightClientState;

/// Checks proofs about other chains' blocks against this chain's light client of them.
///
/// The ledger calls it for `DeliverPacket`, `AcknowledgePacket` and `TimeoutPacket` and applies
/// the answer; it must be a deterministic function of its arguments (every validator must get
/// the same answer). A [`LightClientState`] equal to its default means this chain has no light
/// client of that chain.
pub trait PacketProofs: Sync {
    /// Whether `proof` shows `packet` in a certified block of its source chain.
    fn delivery(&self, client: &LightClientState, packet: &Packet, proof: &PacketProof) -> bool;

    /// Whether `proof` shows the destination chain acknowledged `packet` with `ack`.
    fn acknowledgement(
        &self,
        client: &LightClientState,
        packet: &Packet,
        ack: &Acknowledgement,
        proof: &PacketProof,
    ) -> bool;

    /// Whether `proof` shows `packet` was not received by its timeout.
    fn non_delivery(
        &self,
        client: &LightClientState,
        packet: &Packet,
        proof: &NonDeliveryProof,
    ) -> bool;
}

/// Refuses every proof: the safe choice for a chain that does not take packets (yet).
#[derive(Clone, Copy, Debug, Default)]
pub struct RejectAllProofs;

impl PacketProofs for RejectAllProofs {
    fn delivery(&self, _: &LightClientState, _: &Packet, _: &PacketProof) -> bool {
        false
    }
    fn acknowledgement(
        &self,
        _: &LightClientState,
        _: &Packet,
        _: &Acknowledgement,
        _: &PacketProof,
    ) -> bool {
        false
    }
    fn non_delivery(&self, _: &LightClientState, _: &Packet, _: &NonDeliveryProof) -> bool {
        false
    }
}
