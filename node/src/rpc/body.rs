//! Reading a request body within its limits (parsing it is `banyan_wire::rpc::parse_body`).

use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Granularity of the request-body budget (`RpcLimits::max_buffered_body_bytes`), bytes.
pub(super) const BUDGET_UNIT_BYTES: usize = 1024;

/// Why a body was not read.
pub(super) enum BodyError {
    TooLarge,
    Busy,
    Broken,
}

/// A request body and its share of the body budget.
pub(super) struct Buffered {
    pub(super) bytes: Vec<u8>,
    _budget: Option<OwnedSemaphorePermit>,
}

/// Read a body of at most `max` bytes, taking its bytes from `budget` (in
/// [`BUDGET_UNIT_BYTES`] units) as they arrive, so memory follows what was received, never
/// what was declared.
pub(super) async fn read_body(
    mut body: Incoming,
    max: usize,
    budget: &Arc<Semaphore>,
) -> Result<Buffered, BodyError> {
    let mut bytes = Vec::new();
    let mut held: Option<OwnedSemaphorePermit> = None;
    let mut held_units = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Broken)?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if data.len() > max.saturating_sub(bytes.len()) {
            return Err(BodyError::TooLarge);
        }
        let units = (bytes.len() + data.len()).div_ceil(BUDGET_UNIT_BYTES);
        if units > held_units {
            let more = u32::try_from(units - held_units).map_err(|_| BodyError::Busy)?;
            let permit = budget
                .clone()
                .try_acquire_many_owned(more)
                .map_err(|_| BodyError::Busy)?;
            match held.as_mut() {
                Some(h) => h.merge(permit),
                None => held = Some(permit),
            }
            held_units = units;
        }
        bytes.extend_from_slice(&data);
    }
    Ok(Buffered {
        bytes,
        _budget: held,
    })
}
