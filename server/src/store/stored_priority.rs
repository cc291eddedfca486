//! How a priority is stored, the same in every backend: a small integer
//! that sorts as the agents' queue does (most urgent first is the highest),
//! so that `ORDER BY priority DESC` is the queue's order and an index on it
//! serves the queue.

use switchboard_protocol::Priority;

/// The stored form of `priority`.
pub(in crate::store) fn priority_to_sql(priority: Priority) -> i64 {
    match priority {
        Priority::Low => 0,
        Priority::Normal => 1,
        Priority::High => 2,
        Priority::Urgent => 3,
    }
}

/// A stored priority read back; anything unknown reads as normal (no
/// build has written another value).
pub(in crate::store) fn priority_from_sql(value: i64) -> Priority {
    match value {
        0 => Priority::Low,
        2 => Priority::High,
        3 => Priority::Urgent,
        _ => Priority::Normal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_priority_reads_back_and_sorts_as_the_queue() {
        let all = [
            Priority::Low,
            Priority::Normal,
            Priority::High,
            Priority::Urgent,
        ];
        for priority in all {
            assert_eq!(priority_from_sql(priority_to_sql(priority)), priority);
        }
        let codes: Vec<i64> = all.into_iter().map(priority_to_sql).collect();
        assert!(codes.windows(2).all(|pair| pair[0] < pair[1]), "{codes:?}");
    }
}
