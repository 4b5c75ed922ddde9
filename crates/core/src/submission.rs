//! The log's side of `add-checkpoint` (SPEC "Witnesses"): what a witness's
//! answer means for the submitter, as a pure function. The rule the spec
//! sets: a 409 is retried only when the witness's size is smaller than the
//! log's (the witness is behind; prove from its size); a larger size, the
//! same size with another root, or a 422 is an alarm — the log's history
//! does not extend what the witness cosigned, so the log was rolled back
//! or forked — and the log never signs something else to please a witness.

use crate::checkpoint::Checkpoint;
use crate::cosignature::CosignatureVerifier;
use crate::witness::SIZE_CONTENT_TYPE;

/// What the submitter does after a witness answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WitnessAnswer {
    /// 200 with a valid cosignature by the witness's key: store the line.
    Cosigned { line: String, timestamp: u64 },
    /// 409, the witness is behind at `size`: send again from `size` (with a
    /// consistency proof from it), or with an empty proof when `size` is the
    /// log's own (the witness then only compares roots).
    ResendFrom { size: u64 },
    /// The log's history contradicts what the witness cosigned.
    Alarm(Alarm),
    /// The witness or its configuration is wrong (400, 403, 404, a 200
    /// without a valid cosignature, a 409 without a size): an error for the
    /// operator, not evidence against the log.
    Misconfigured(String),
    /// Try again later with backoff (5xx, 429, an unexpected status).
    Unavailable(String),
}

/// Why the log's history contradicts a witness: each one means the log was
/// rolled back or forked since the witness cosigned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Alarm {
    #[error("the witness cosigned size {witness_size}, larger than the log's {log_size}: the log was rolled back")]
    WitnessAhead { witness_size: u64, log_size: u64 },
    #[error("the witness cosigned another root at size {size}: the log forked")]
    Fork { size: u64 },
    #[error("the witness refused the consistency proof (422): the log's history does not extend what it cosigned: {0}")]
    ProofRefused(String),
}

/// Reads a witness's answer to a request sent with old size `sent_old` for
/// the log's `checkpoint`. `content_type` and `body` are the response's.
pub fn interpret(
    status: u16,
    content_type: Option<&str>,
    body: &str,
    sent_old: u64,
    checkpoint: &Checkpoint,
    witness: &CosignatureVerifier,
) -> WitnessAnswer {
    let excerpt = || {
        body.chars()
            .take(200)
            .collect::<String>()
            .trim()
            .to_string()
    };
    match status {
        200 => {
            let checkpoint_body = checkpoint.body();
            body.lines()
                .find_map(|line| {
                    witness
                        .verify_line(&checkpoint_body, line)
                        .ok()
                        .map(|timestamp| WitnessAnswer::Cosigned {
                            line: format!("{line}\n"),
                            timestamp,
                        })
                })
                .unwrap_or_else(|| {
                    WitnessAnswer::Misconfigured(format!(
                        "the witness answered 200 without a valid cosignature by {}",
                        witness.to_text()
                    ))
                })
        }
        409 => {
            let media_type = content_type
                .and_then(|t| t.split(';').next())
                .map(str::trim);
            let size = body
                .strip_suffix('\n')
                .filter(|_| media_type == Some(SIZE_CONTENT_TYPE))
                .and_then(|size| size.parse::<u64>().ok());
            let Some(size) = size else {
                return WitnessAnswer::Misconfigured(format!(
                    "the witness answered 409 without its size as {SIZE_CONTENT_TYPE}: {}",
                    excerpt()
                ));
            };
            let log_size = checkpoint.size;
            if size > log_size {
                WitnessAnswer::Alarm(Alarm::WitnessAhead {
                    witness_size: size,
                    log_size,
                })
            } else if size == log_size && sent_old == log_size {
                // We sent its own size with an empty proof: the roots differ.
                WitnessAnswer::Alarm(Alarm::Fork { size })
            } else if size == sent_old {
                WitnessAnswer::Misconfigured(format!(
                    "the witness answered 409 with the very size {size} that was sent"
                ))
            } else {
                WitnessAnswer::ResendFrom { size }
            }
        }
        422 => WitnessAnswer::Alarm(Alarm::ProofRefused(excerpt())),
        400 | 403 | 404 | 413 => {
            WitnessAnswer::Misconfigured(format!("the witness answered {status}: {}", excerpt()))
        }
        _ => WitnessAnswer::Unavailable(format!("the witness answered {status}: {}", excerpt())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosignature::CosignatureSigner;

    fn checkpoint(size: u64) -> Checkpoint {
        Checkpoint {
            origin: "auditlog".into(),
            size,
            root: [size as u8; 32],
        }
    }

    #[test]
    fn each_answer_means_what_the_spec_says() {
        let witness = CosignatureSigner::from_seed("w", [3; 32]).unwrap();
        let key = witness.verifier();
        let at10 = checkpoint(10);
        let size = Some("text/x.tlog.size");
        let read = |status, content_type, body: &str, old| {
            interpret(status, content_type, body, old, &at10, &key)
        };

        let line = witness.cosign(&at10.body(), 77).unwrap();
        assert_eq!(
            read(200, Some("text/plain"), &line, 4),
            WitnessAnswer::Cosigned {
                line: line.clone(),
                timestamp: 77
            }
        );
        // Lines by other witnesses are skipped; a line on another checkpoint is no cosignature.
        let other = CosignatureSigner::from_seed("x", [4; 32]).unwrap();
        let both = format!("{}{line}", other.cosign(&at10.body(), 1).unwrap());
        assert!(matches!(
            read(200, None, &both, 4),
            WitnessAnswer::Cosigned { timestamp: 77, .. }
        ));
        let wrong = witness.cosign(&checkpoint(9).body(), 77).unwrap();
        assert!(matches!(
            read(200, None, &wrong, 4),
            WitnessAnswer::Misconfigured(_)
        ));

        // 409: behind → resend from its size; ahead → rolled back; same size → resend, then fork.
        assert_eq!(
            read(409, size, "4\n", 0),
            WitnessAnswer::ResendFrom { size: 4 }
        );
        assert_eq!(
            read(409, size, "0\n", 4),
            WitnessAnswer::ResendFrom { size: 0 }
        );
        assert_eq!(
            read(409, size, "10\n", 4),
            WitnessAnswer::ResendFrom { size: 10 }
        );
        assert_eq!(
            read(409, size, "10\n", 10),
            WitnessAnswer::Alarm(Alarm::Fork { size: 10 })
        );
        assert_eq!(
            read(409, Some("text/x.tlog.size; charset=utf-8"), "12\n", 4),
            WitnessAnswer::Alarm(Alarm::WitnessAhead {
                witness_size: 12,
                log_size: 10
            })
        );
        assert!(matches!(
            read(409, size, "4\n", 4),
            WitnessAnswer::Misconfigured(_)
        ));
        assert!(matches!(
            read(409, Some("text/plain"), "4\n", 0),
            WitnessAnswer::Misconfigured(_)
        ));
        assert!(matches!(
            read(409, size, "four\n", 0),
            WitnessAnswer::Misconfigured(_)
        ));

        assert!(matches!(
            read(422, None, "bad proof", 4),
            WitnessAnswer::Alarm(Alarm::ProofRefused(_))
        ));
        for status in [400, 403, 404, 413] {
            assert!(
                matches!(read(status, None, "", 4), WitnessAnswer::Misconfigured(_)),
                "{status}"
            );
        }
        for status in [429, 500, 502, 503] {
            assert!(
                matches!(read(status, None, "", 4), WitnessAnswer::Unavailable(_)),
                "{status}"
            );
        }
    }
}
