//! The log's end of the protocol: sends a checkpoint to one witness and
//! follows its answer as `auditlog_core::submission` reads it — resending
//! from the witness's size when it is behind, stopping at an alarm, never
//! changing what the log signed. The caller (the log's signer path) chooses
//! the witnesses, runs them with bounded concurrency and backoff, stores the
//! cosignatures and raises alarms; this function does one witness, once.

use auditlog_core::checkpoint::Checkpoint;
use auditlog_core::cosignature::CosignatureVerifier;
use auditlog_core::merkle::Hash;
use auditlog_core::submission::{interpret, Alarm, WitnessAnswer};
use auditlog_core::witness::AddCheckpoint;
use std::future::Future;

/// How many requests one submission may take: the first, one resend from
/// the witness's size, and one more if the witness moved meanwhile.
const MAX_REQUESTS: usize = 3;

/// A witness as the log's settings name it.
#[derive(Debug, Clone)]
pub struct WitnessEndpoint {
    /// The name logs and verifiers know it by (the key's name).
    pub name: String,
    /// Its submission prefix: `add-checkpoint` is appended.
    pub url: String,
    pub key: CosignatureVerifier,
}

/// What one submission ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// The witness cosigned: the line to store beside the checkpoint.
    Cosigned { line: String, timestamp: u64 },
    /// The log's history contradicts what the witness cosigned.
    Alarm(Alarm),
    /// The witness or its configuration is wrong.
    Misconfigured(String),
    /// Unreachable, or answered 5xx/429: retry later.
    Unavailable(String),
}

/// Sends `note` (the signed `checkpoint`) to `witness`, starting from
/// `known_size`, the size the log believes the witness has (0 if unknown;
/// the witness's 409 corrects it). `prove(from)` gives the consistency
/// proof from size `from` to the checkpoint's size.
pub async fn submit<P, F>(
    http: &reqwest::Client,
    witness: &WitnessEndpoint,
    note: &str,
    checkpoint: &Checkpoint,
    known_size: u64,
    prove: P,
) -> Submitted
where
    P: Fn(u64) -> F,
    F: Future<Output = Result<Vec<Hash>, String>>,
{
    let url = format!("{}/add-checkpoint", witness.url.trim_end_matches('/'));
    let mut old = known_size.min(checkpoint.size);
    for _ in 0..MAX_REQUESTS {
        let proof = if old == 0 || old == checkpoint.size {
            Vec::new()
        } else {
            match prove(old).await {
                Ok(proof) => proof,
                Err(e) => {
                    return Submitted::Unavailable(format!(
                        "cannot prove consistency from {old}: {e}"
                    ))
                }
            }
        };
        let body = AddCheckpoint::body(old, &proof, note);
        let response = match http.post(&url).body(body).send().await {
            Ok(response) => response,
            Err(e) => return Submitted::Unavailable(format!("{url}: {e}")),
        };
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = match response.text().await {
            Ok(text) => text,
            Err(e) => return Submitted::Unavailable(format!("{url}: {e}")),
        };
        match interpret(
            status,
            content_type.as_deref(),
            &text,
            old,
            checkpoint,
            &witness.key,
        ) {
            WitnessAnswer::Cosigned { line, timestamp } => {
                return Submitted::Cosigned { line, timestamp }
            }
            WitnessAnswer::ResendFrom { size } => old = size,
            WitnessAnswer::Alarm(alarm) => return Submitted::Alarm(alarm),
            WitnessAnswer::Misconfigured(why) => return Submitted::Misconfigured(why),
            WitnessAnswer::Unavailable(why) => return Submitted::Unavailable(why),
        }
    }
    Submitted::Unavailable(format!(
        "the witness's size kept changing over {MAX_REQUESTS} requests"
    ))
}
