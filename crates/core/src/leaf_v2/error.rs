//! What can go wrong building or checking a version 2 leaf. Apart from
//! `leaf_v2` itself so that its parts (`commitment`, `openings`, `salt`)
//! can name it without using the module that uses them.

#[derive(Debug, thiserror::Error)]
pub enum LeafV2Error {
    #[error(
        "the event's leaf would be {bytes} bytes; a log entry holds at most {limit} (send smaller details)"
    )]
    TooLarge { bytes: usize, limit: usize },
    #[error("cannot draw a salt from the operating system's random source")]
    Randomness(#[source] getrandom::Error),
    #[error("opening {key:?}: {reason}")]
    BadOpening { key: String, reason: String },
    #[error("not a served version 2 event: {0}")]
    NotAnEvent(String),
}
