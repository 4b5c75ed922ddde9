//! The event log's row key (migration 0010): `account_id << 40 | seq`, so
//! that each account's events are one key range in seq order, and the
//! 64-bit hash that the log keeps of event ids and target ids. A leaf: the
//! writer, the readers and the row mapping all use it.

use auditlog_store::{Result, StoreError};

/// Bits of the key that hold the seq: an account holds up to 2^40 - 1
/// events, and account ids up to 2^23 - 1 fit above them.
pub(crate) const SEQ_BITS: u32 = 40;
pub(crate) const SEQ_MASK: i64 = (1 << SEQ_BITS) - 1;
const ACCOUNT_LIMIT: i64 = 1 << (63 - SEQ_BITS);

/// The row key of event `seq` of `account`.
pub(crate) fn log_key(account: i64, seq: u64) -> Result<i64> {
    if !(1..ACCOUNT_LIMIT).contains(&account) {
        return Err(StoreError::internal(format!(
            "account id {account} does not fit the event log's key (ids 1 to {})",
            ACCOUNT_LIMIT - 1
        )));
    }
    if seq > SEQ_MASK as u64 {
        return Err(StoreError::internal(format!(
            "account {account} reached the largest seq the event log's key holds ({SEQ_MASK})"
        )));
    }
    Ok(account << SEQ_BITS | seq as i64)
}

/// The seq of a row key.
pub(crate) fn seq_of(key: i64) -> u64 {
    (key & SEQ_MASK) as u64
}

/// The key of `account`'s event `seq`, clamped into the account's range
/// (for bounds of windows and cursors; a seq past the largest means "to the
/// end"). An account id no key can hold gives an empty range's bound.
pub(crate) fn bound_key(account: i64, seq: u64) -> i64 {
    if !(1..ACCOUNT_LIMIT).contains(&account) {
        return 0;
    }
    account << SEQ_BITS | (seq.min(SEQ_MASK as u64) as i64)
}

/// The 64-bit hash the log keeps of event ids and target ids (the embedded
/// store's, which migration 0010 computes in SQL the same way).
pub(crate) use auditlog_store::key_hash64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_accounts_apart_and_seqs_in_order() {
        let key = log_key(3, 17).unwrap();
        assert_eq!(key >> SEQ_BITS, 3);
        assert_eq!(seq_of(key), 17);
        assert!(bound_key(3, 0) < key && key < bound_key(3, u64::MAX));
        assert!(bound_key(3, u64::MAX) < bound_key(4, 0));
        assert!(log_key(3, SEQ_MASK as u64 + 1).is_err());
        assert!(log_key(0, 1).is_err());
        assert!(log_key(ACCOUNT_LIMIT, 1).is_err());
    }
}
