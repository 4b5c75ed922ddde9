//! The event log's row key, the same on both backends (their migration
//! 0010): `account_id << 40 | seq`, so that each account's events are one
//! key range in seq order (on SQLite the table's INTEGER PRIMARY KEY, on
//! PostgreSQL its bigint primary key). The 64-bit hash the log keeps of
//! event ids and target ids is [`crate::key_hash64`].

use crate::{Result, StoreError};

/// Bits of the key that hold the seq: an account holds up to 2^40 - 1
/// events (a trillion), and account ids up to 2^23 - 1 fit above them.
pub const SEQ_BITS: u32 = 40;
pub const SEQ_MASK: i64 = (1 << SEQ_BITS) - 1;
const ACCOUNT_LIMIT: i64 = 1 << (63 - SEQ_BITS);

/// The row key of event `seq` of `account`.
pub fn log_key(account: i64, seq: u64) -> Result<i64> {
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
pub fn seq_of(key: i64) -> u64 {
    (key & SEQ_MASK) as u64
}

/// The keys of `account`'s events, both inclusive (seq 0 to the largest);
/// an empty range for an id no account can have.
pub fn account_keys(account: i64) -> (i64, i64) {
    if (1..ACCOUNT_LIMIT).contains(&account) {
        (account << SEQ_BITS, account << SEQ_BITS | SEQ_MASK)
    } else {
        (1, 0)
    }
}

/// The key of `account`'s event `seq`, clamped into the account's range
/// (for bounds of windows and cursors, where a seq past the largest means
/// "to the end").
pub fn bound_key(account: i64, seq: u64) -> i64 {
    let (first, last) = account_keys(account);
    if first > last {
        return first;
    }
    first | (seq.min(SEQ_MASK as u64) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_accounts_apart_and_seqs_in_order() {
        let key = log_key(3, 17).unwrap();
        assert_eq!(key >> SEQ_BITS, 3);
        assert_eq!(seq_of(key), 17);
        let (first, last) = account_keys(3);
        assert!(first < key && key < last);
        assert!(last < account_keys(4).0);
        assert!(log_key(3, SEQ_MASK as u64 + 1).is_err());
        assert!(log_key(0, 1).is_err());
        assert!(log_key(ACCOUNT_LIMIT, 1).is_err());
        let (first, last) = account_keys(-1);
        assert!(first > last);
        assert_eq!(bound_key(3, u64::MAX), last_of(3));
    }

    fn last_of(account: i64) -> i64 {
        account_keys(account).1
    }
}
