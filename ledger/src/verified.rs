//! Transactions checked once, before execution: signature, proof of possession, evidence.

use banyan_core::hash::Digest;
use banyan_core::ids::Address;
use banyan_core::keys::KeyError;
use banyan_core::tx::{Equivocation, EvidenceError, SignedTx, TxKind};

/// A signed transaction whose signature (and, for a stake, the proof of possession of the
/// validator key) has been checked, with its sender's address computed once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedTx {
    pub(crate) tx: SignedTx,
    pub(crate) sender: Address,
}

/// Why a transaction could not be verified.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The signature does not verify.
    #[error("transaction {index}: bad signature")]
    BadSignature {
        /// Position in the batch.
        index: usize,
    },
    /// A stake's proof of possession does not verify for its validator key.
    #[error("transaction {index}: {source}")]
    BadProofOfPossession {
        /// Position in the batch.
        index: usize,
        /// What failed.
        source: KeyError,
    },
    /// An equivocation report's evidence proves nothing (see [`Equivocation::verify`]).
    #[error("transaction {index}: bad equivocation evidence: {source}")]
    BadEvidence {
        /// Position in the batch.
        index: usize,
        /// What is wrong with it.
        source: EvidenceError,
    },
}

impl VerifyError {
    /// Position in the batch of the transaction refused.
    pub fn index(&self) -> usize {
        match self {
            VerifyError::BadSignature { index }
            | VerifyError::BadProofOfPossession { index, .. }
            | VerifyError::BadEvidence { index, .. } => *index,
        }
    }
}

fn check_stateless(index: usize, tx: &SignedTx) -> Result<(), VerifyError> {
    match &tx.body.kind {
        TxKind::Stake {
            validator_key, pop, ..
        } => {
            pop.verify(validator_key)
                .map_err(|source| VerifyError::BadProofOfPossession { index, source })?;
        }
        TxKind::ReportEquivocation { evidence, .. } => {
            evidence
                .verify()
                .map_err(|source| VerifyError::BadEvidence { index, source })?;
        }
        TxKind::ReportProposalEquivocation { evidence, .. } => {
            evidence
                .verify()
                .map_err(|source| VerifyError::BadEvidence { index, source })?;
        }
        _ => {}
    }
    Ok(())
}

impl VerifiedTx {
    /// Check one transaction.
    pub fn verify(tx: SignedTx) -> Result<Self, VerifyError> {
        tx.verify_signature()
            .map_err(|_| VerifyError::BadSignature { index: 0 })?;
        check_stateless(0, &tx)?;
        Ok(Self::assume_verified(tx))
    }

    /// Check many transactions (signatures in one batch); the error names the first bad one.
    pub fn verify_batch(txs: Vec<SignedTx>) -> Result<Vec<Self>, VerifyError> {
        let ids: Vec<Digest> = txs.iter().map(SignedTx::id).collect();
        let refs: Vec<&SignedTx> = txs.iter().collect();
        Self::check_batch(&refs, &ids)?;
        Ok(txs.into_iter().map(Self::assume_verified).collect())
    }

    /// The checks of [`verify_batch`](Self::verify_batch), for a caller that keeps the
    /// transactions and has computed their ids already (`ids[i]` must be `txs[i].id()`):
    /// nothing is copied and no id is hashed again. The error names the first bad one.
    pub fn check_batch(txs: &[&SignedTx], ids: &[Digest]) -> Result<(), VerifyError> {
        if let Err(bad) = SignedTx::verify_batch_with_ids(txs, ids) {
            let index = bad.0.first().copied().unwrap_or(0);
            return Err(VerifyError::BadSignature { index });
        }
        for (index, tx) in txs.iter().enumerate() {
            check_stateless(index, tx)?;
        }
        Ok(())
    }

    /// Wrap a transaction whose signature and stateless checks the caller has already done
    /// (for example when it entered the mempool). Nothing is checked.
    pub fn assume_verified(tx: SignedTx) -> Self {
        let sender = tx.sender();
        VerifiedTx { tx, sender }
    }

    /// The transaction.
    pub fn tx(&self) -> &SignedTx {
        &self.tx
    }

    /// The sender's address.
    pub fn sender(&self) -> Address {
        self.sender
    }

    /// The transaction back.
    pub fn into_inner(self) -> SignedTx {
        self.tx
    }
}
