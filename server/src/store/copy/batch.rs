//! [`Batcher`]: rows gathered into batches, each written to PostgreSQL in
//! one round trip, cut by count and by size. Pure: no database here.

use super::records::Record;

/// Rows a batch holds at most: one round trip per 5,000 rows makes the
/// network's latency a rounding error (a million messages are 200 round
/// trips), while a batch of short rows stays a few hundred KiB.
pub(in crate::store) const BATCH_ROWS: usize = 5_000;

/// Bytes a batch holds at most, roughly ([`Record::size_bytes`]): long
/// bodies make for fewer rows a batch, so memory stays bounded whatever
/// `--max-body` the help desk ran with.
pub(in crate::store) const BATCH_BYTES: usize = 4 << 20;

/// How a batch is cut.
#[derive(Debug, Clone, Copy)]
pub(in crate::store) struct BatchLimits {
    pub rows: usize,
    pub bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            rows: BATCH_ROWS,
            bytes: BATCH_BYTES,
        }
    }
}

/// Gathers rows; hands back a batch once it is full.
pub(in crate::store) struct Batcher<R> {
    limits: BatchLimits,
    rows: Vec<R>,
    bytes: usize,
}

impl<R: Record> Batcher<R> {
    pub(in crate::store) fn new(limits: BatchLimits) -> Self {
        Batcher {
            limits,
            rows: Vec::new(),
            bytes: 0,
        }
    }

    /// Adds `row`; the batch, once it reaches either limit. A row larger
    /// than the byte limit makes a batch of its own.
    pub(in crate::store) fn push(&mut self, row: R) -> Option<Vec<R>> {
        self.bytes += row.size_bytes();
        self.rows.push(row);
        if self.rows.len() >= self.limits.rows || self.bytes >= self.limits.bytes {
            self.bytes = 0;
            return Some(std::mem::take(&mut self.rows));
        }
        None
    }

    /// The last, partial batch, if any row is left.
    pub(in crate::store) fn finish(self) -> Option<Vec<R>> {
        (!self.rows.is_empty()).then_some(self.rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::copy::records::{MessageRecord, WaitingRecord};

    fn waiting(message_id: i64) -> WaitingRecord {
        WaitingRecord {
            message_id,
            user_id: 1,
            urgency: 1,
        }
    }

    fn message(id: i64, body_bytes: usize) -> MessageRecord {
        MessageRecord {
            id,
            ts_us: id,
            user_id: 1,
            agent_id: None,
            body: "x".repeat(body_bytes),
            priority: 1,
            note: false,
        }
    }

    #[test]
    fn cuts_by_count_and_keeps_the_rest_for_the_end() {
        let mut batcher = Batcher::new(BatchLimits {
            rows: 3,
            bytes: usize::MAX,
        });
        let mut batches: Vec<Vec<WaitingRecord>> =
            (1..=7).filter_map(|id| batcher.push(waiting(id))).collect();
        batches.extend(batcher.finish());
        let batches: Vec<Vec<i64>> = batches
            .iter()
            .map(|batch| batch.iter().map(|row| row.message_id).collect())
            .collect();
        assert_eq!(batches, [vec![1, 2, 3], vec![4, 5, 6], vec![7]]);
    }

    #[test]
    fn cuts_by_size_and_a_huge_row_goes_alone() {
        let mut batcher = Batcher::new(BatchLimits {
            rows: 100,
            bytes: 1_000,
        });
        assert!(batcher.push(message(1, 300)).is_none());
        assert!(batcher.push(message(2, 300)).is_none());
        let full = batcher.push(message(3, 300)).expect("past 1,000 bytes");
        assert_eq!(full.len(), 3);
        let alone = batcher
            .push(message(4, 5_000))
            .expect("one row past the limit");
        assert_eq!(alone.len(), 1);
        assert!(batcher.finish().is_none(), "nothing left");
    }

    #[test]
    fn nothing_in_nothing_out() {
        assert!(
            Batcher::<WaitingRecord>::new(BatchLimits::default())
                .finish()
                .is_none()
        );
    }
}
