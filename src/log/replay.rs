//! Replaying a log from its start: how the coordinators (groups,
//! transactions) rebuild their state from their internal topics at start.
//!
//! Reads every written batch in offset order with large O_DIRECT reads
//! (`scan`), bypassing the tail cache and the fetch path's planning, and
//! hands each whole batch to the visitor. Runs on the owning shard; the
//! segment list is captured first, so no borrow of the log is held across
//! the reads.

use std::rc::Rc;

use bytes::Bytes;
use glommio::io::DmaFile;

use super::{
    partition::PartitionLog,
    scan::{scan_batches, Visit},
    LogError,
};
use crate::protocol::record_batch::BatchHeader;

impl PartitionLog {
    /// Calls `visit` with every batch below the high watermark (as of the
    /// call), in offset order.
    pub async fn replay(&self, mut visit: impl FnMut(Bytes, &BatchHeader)) -> Result<(), LogError> {
        let (segments, end): (Vec<(Rc<DmaFile>, std::path::PathBuf, u64)>, i64) = {
            let state = self.state.borrow();
            let segments = state
                .segments
                .iter()
                .map(|s| (s.file.clone(), s.path.clone(), s.size_bytes))
                .collect();
            (segments, state.high_watermark)
        };
        for (file, path, size_bytes) in segments {
            scan_batches(&file, &path, 0, size_bytes, |_, batch, header| {
                if header.base_offset >= end {
                    return Visit::Stop;
                }
                visit(batch, header);
                Visit::Continue
            })
            .await?;
        }
        Ok(())
    }
}
