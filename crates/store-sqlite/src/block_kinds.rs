//! The kind of each event of a block of the log, as `word_blocks.kinds`
//! stores it (migration 0026), so that a count of free text with `type`
//! and `action` terms settles each match from its block's row instead of
//! looking the match's event up (BENCHMARKS.md, "Word with type counts").
//!
//! The encoding is canonical, so that the writer's rows and the
//! migration's are the same bytes: a palette of the block's distinct kinds
//! (`log_values` ids) in ascending order, then one byte per slot (the
//! seq's offset in its block, from 0) giving the kind's place in the
//! palette, [`UNKNOWN`] for a slot without a known kind (no such seq yet,
//! a seq appended by a build without this column, or a 256th distinct
//! kind). 256 slots with a dozen kinds is about 350 bytes a block, about
//! 1.4 bytes an event.
//!
//! ```text
//! palette length (1 byte) · palette (8 bytes each, little-endian i64) · slots (1 byte each)
//! ```

/// A slot whose kind is not known: the match is looked up.
const UNKNOWN: u8 = 0xFF;

/// The most kinds a palette holds (indexes 0..=254).
const PALETTE_MAX: usize = UNKNOWN as usize;

/// The kinds of one block's slots (`None`: not known).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BlockKinds {
    slots: Vec<Option<i64>>,
}

impl BlockKinds {
    /// The stored bytes; `None` (a malformed value, from an edited store)
    /// when they do not parse, so that every slot is looked up.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let (&length, rest) = bytes.split_first()?;
        let length = length as usize;
        let palette_bytes = length.checked_mul(8)?;
        if rest.len() < palette_bytes {
            return None;
        }
        let (palette, slots) = rest.split_at(palette_bytes);
        let palette: Vec<i64> = palette
            .chunks_exact(8)
            .map(|b| {
                let mut word = [0u8; 8];
                word.copy_from_slice(b);
                i64::from_le_bytes(word)
            })
            .collect();
        let slots = slots
            .iter()
            .map(|&at| palette.get(at as usize).copied())
            .collect();
        Some(BlockKinds { slots })
    }

    /// The canonical bytes of these slots.
    pub fn encode(&self) -> Vec<u8> {
        let mut palette: Vec<i64> = self.slots.iter().flatten().copied().collect();
        palette.sort_unstable();
        palette.dedup();
        // A block of 256 events has at most 256 kinds; the ones beyond the
        // palette's 255 stay unknown.
        palette.truncate(PALETTE_MAX);
        let mut bytes = Vec::with_capacity(1 + palette.len() * 8 + self.slots.len());
        bytes.push(palette.len() as u8);
        for kind in &palette {
            bytes.extend_from_slice(&kind.to_le_bytes());
        }
        for slot in &self.slots {
            let at = slot
                .and_then(|kind| palette.binary_search(&kind).ok())
                .map_or(UNKNOWN, |at| at as u8);
            bytes.push(at);
        }
        bytes
    }

    /// The kind of the event in `slot` read from the stored bytes
    /// themselves (what a count does for each match: decoding the whole
    /// block would build 256 slots for the few matches it holds); `None`
    /// when unknown or the bytes do not parse.
    pub fn kind_in(bytes: &[u8], slot: usize) -> Option<i64> {
        let length = *bytes.first()? as usize;
        let slots = 1 + length * 8;
        let at = *bytes.get(slots.checked_add(slot)?)? as usize;
        if at >= length {
            return None;
        }
        let start = 1 + at * 8;
        let mut word = [0u8; 8];
        word.copy_from_slice(bytes.get(start..start + 8)?);
        Some(i64::from_le_bytes(word))
    }

    /// Records that the event in `slot` is of `kind`.
    pub fn set(&mut self, slot: usize, kind: i64) {
        if self.slots.len() <= slot {
            self.slots.resize(slot + 1, None);
        }
        self.slots[slot] = Some(kind);
    }

    /// The kind of the event in `slot`, if known (tests compare it with
    /// [`BlockKinds::kind_in`]).
    #[cfg(test)]
    pub fn kind(&self, slot: usize) -> Option<i64> {
        self.slots.get(slot).copied().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_round_trip_in_one_canonical_encoding() {
        let mut arrival = BlockKinds::default();
        for (slot, kind) in [(3, 900), (1, 7), (2, 900), (5, -4)] {
            arrival.set(slot, kind);
        }
        let mut sorted = BlockKinds::default();
        for (slot, kind) in [(1, 7), (2, 900), (3, 900), (5, -4)] {
            sorted.set(slot, kind);
        }
        let bytes = arrival.encode();
        assert_eq!(bytes, sorted.encode(), "the order of writing does not show");
        let decoded = BlockKinds::decode(&bytes).unwrap();
        assert_eq!(decoded, arrival);
        let kinds: Vec<Option<i64>> = (0..8).map(|slot| decoded.kind(slot)).collect();
        assert_eq!(
            kinds,
            [
                None,
                Some(7),
                Some(900),
                Some(900),
                None,
                Some(-4),
                None,
                None
            ]
        );
        let read_in_place: Vec<Option<i64>> = (0..8)
            .map(|slot| BlockKinds::kind_in(&bytes, slot))
            .collect();
        assert_eq!(read_in_place, kinds);
        // Three kinds, then six slots.
        assert_eq!(bytes.len(), 1 + 3 * 8 + 6);
    }

    #[test]
    fn kinds_beyond_the_palette_and_malformed_bytes_are_unknown() {
        let mut many = BlockKinds::default();
        for slot in 0..256 {
            many.set(slot, slot as i64 * 10);
        }
        let decoded = BlockKinds::decode(&many.encode()).unwrap();
        assert_eq!(decoded.kind(254), Some(2540));
        assert_eq!(
            decoded.kind(255),
            None,
            "the 256th kind is not in the palette"
        );
        assert_eq!(BlockKinds::decode(&[]), None);
        assert_eq!(BlockKinds::decode(&[2, 1, 0, 0]), None, "palette cut short");
        // A slot pointing past the palette (an edited value) is unknown.
        let mut bytes = vec![1];
        bytes.extend_from_slice(&5i64.to_le_bytes());
        bytes.extend_from_slice(&[0, 1, UNKNOWN]);
        let decoded = BlockKinds::decode(&bytes).unwrap();
        assert_eq!(
            (decoded.kind(0), decoded.kind(1), decoded.kind(2)),
            (Some(5), None, None)
        );
        for slot in 0..4 {
            assert_eq!(BlockKinds::kind_in(&bytes, slot), decoded.kind(slot));
        }
        assert_eq!(BlockKinds::kind_in(&[], 0), None);
        assert_eq!(
            BlockKinds::kind_in(&[2, 1, 0, 0, 0], 0),
            None,
            "palette cut short"
        );
    }
}
