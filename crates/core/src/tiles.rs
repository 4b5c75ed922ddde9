//! C2SP tlog-tiles (<https://c2sp.org/tlog-tiles>) without I/O: the paths
//! `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]`, which hashes of
//! the stored tree a hash tile holds, which entries a bundle holds, and the
//! bundle's encoding. Tiles have height 8: a full tile holds 256 hashes.
//!
//! A hash tile at level L lists consecutive hashes of the tree's level 8·L
//! (level 0 = leaf hashes), each the root of a complete subtree of 256^L
//! leaves. Those are exactly the hashes `merkle` stores (Go's tlog layout),
//! so a tile is read from the stored hashes, never recomputed.

use crate::merkle::stored_hash_index;

/// Tile height: a full tile spans 8 levels of the tree.
pub const HEIGHT: u32 = 8;
/// Hashes in a full tile, entries in a full bundle.
pub const FULL_WIDTH: u16 = 1 << HEIGHT;
/// The largest level a path may name (C2SP: 0 to 63).
pub const MAX_LEVEL: u8 = 63;
/// The largest entry a bundle can carry: its length is a big-endian u16.
pub const MAX_ENTRY_LEN: usize = u16::MAX as usize;

/// What a tile path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileKind {
    /// Merkle tree hashes at tile level `level` (tree level 8·level).
    Hashes { level: u8 },
    /// An entry bundle: the entries (leaf bytes) of leaves N·256 ….
    Entries,
}

/// A parsed tile path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TilePath {
    pub kind: TileKind,
    /// The tile's index N within its level.
    pub index: u64,
    /// 1 to 256; 256 is a full tile, anything less a partial one (`.p/<W>`).
    pub width: u16,
}

/// Why a tile path is malformed: the part of the path and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TilePathError {
    /// `level`, `index` or `width`.
    pub part: &'static str,
    /// A short machine-readable name of the rule.
    pub rule: &'static str,
    pub message: String,
}

fn path_error(part: &'static str, rule: &'static str, message: String) -> TilePathError {
    TilePathError {
        part,
        rule,
        message,
    }
}

/// A decimal number without sign or leading zeros, at most `max`.
fn plain_decimal(text: &str, max: u64) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.len() <= 20
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical
        .then(|| text.parse::<u64>().ok())
        .flatten()
        .filter(|n| *n <= max)
}

/// Three ASCII digits.
fn three_digits(text: &str) -> Option<u64> {
    (text.len() == 3 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// Parses N from its path elements: `x001/x234/067` is 1234067.
fn parse_index(elements: &[&str]) -> Result<u64, TilePathError> {
    let bad = |why: String| path_error("index", "malformed_index", why);
    let Some((last, leading)) = elements.split_last() else {
        return Err(bad("the tile index is missing".into()));
    };
    let mut index = 0u64;
    for (i, element) in leading.iter().enumerate() {
        let group = element
            .strip_prefix('x')
            .and_then(three_digits)
            .ok_or_else(|| {
                bad(format!(
                    "index element {element:?} must be \"x\" and three digits (every element but the last)"
                ))
            })?;
        if i == 0 && group == 0 {
            // x000/… would be a second spelling of a smaller index.
            return Err(path_error(
                "index",
                "not_canonical",
                format!("index element {element:?}: the index must not start with x000"),
            ));
        }
        index = index
            .checked_mul(1000)
            .and_then(|n| n.checked_add(group))
            .ok_or_else(|| bad("the tile index is too large".into()))?;
    }
    let group = three_digits(last).ok_or_else(|| {
        bad(format!(
            "index element {last:?} must be three digits (the last element)"
        ))
    })?;
    index
        .checked_mul(1000)
        .and_then(|n| n.checked_add(group))
        .ok_or_else(|| bad("the tile index is too large".into()))
}

/// Writes N in the path encoding: 1234067 is `x001/x234/067`.
fn format_index(mut index: u64) -> String {
    let mut out = format!("{:03}", index % 1000);
    while index >= 1000 {
        index /= 1000;
        out = format!("x{:03}/{out}", index % 1000);
    }
    out
}

impl TilePath {
    /// Parses what follows `tile/`: `<L>/<N>[.p/<W>]` or
    /// `entries/<N>[.p/<W>]`, exactly as C2SP spells them (no leading
    /// zeros in L or W, W from 1 to 255, N in three-digit elements).
    pub fn parse(path: &str) -> Result<Self, TilePathError> {
        let mut elements: Vec<&str> = path.split('/').collect();
        let first = elements.remove(0);
        let kind = if first == "entries" {
            TileKind::Entries
        } else {
            let level = plain_decimal(first, MAX_LEVEL as u64).ok_or_else(|| {
                path_error(
                    "level",
                    "malformed_level",
                    format!(
                        "tile level {first:?} must be \"entries\" or a decimal number from 0 to \
                         {MAX_LEVEL} without leading zeros"
                    ),
                )
            })?;
            TileKind::Hashes { level: level as u8 }
        };
        let mut width = FULL_WIDTH;
        let partial_at = elements.len().checked_sub(2);
        if let Some(at) = partial_at.filter(|&at| elements[at].ends_with(".p")) {
            let text = elements[at + 1];
            let w = plain_decimal(text, FULL_WIDTH as u64 - 1)
                .filter(|w| *w >= 1)
                .ok_or_else(|| {
                    path_error(
                        "width",
                        "malformed_width",
                        format!(
                            "partial tile width {text:?} must be a decimal number from 1 to 255 \
                             without leading zeros"
                        ),
                    )
                })?;
            width = w as u16;
            elements[at] = &elements[at][..elements[at].len() - 2];
            elements.pop();
        }
        let index = parse_index(&elements)?;
        Ok(TilePath { kind, index, width })
    }

    /// The path after `tile/`, as [`parse`](Self::parse) reads it.
    pub fn to_path(&self) -> String {
        let kind = match self.kind {
            TileKind::Hashes { level } => level.to_string(),
            TileKind::Entries => "entries".to_string(),
        };
        let partial = if self.is_full() {
            String::new()
        } else {
            format!(".p/{}", self.width)
        };
        format!("{kind}/{}{partial}", format_index(self.index))
    }

    pub fn is_full(&self) -> bool {
        self.width == FULL_WIDTH
    }

    /// The position of the tile's first hash (or entry) among the hashes
    /// of its tree level, and one past its last; `None` if that is beyond
    /// what u64 counts (so beyond any tree).
    fn span(&self) -> Option<(u64, u64)> {
        let first = self.index.checked_mul(FULL_WIDTH as u64)?;
        Some((first, first.checked_add(self.width as u64)?))
    }

    /// How many hashes of tree level 8·L a tree of `tree_size` leaves has:
    /// one per complete subtree of 256^L leaves.
    fn hashes_at_level(level: u8, tree_size: u64) -> u64 {
        let shift = HEIGHT * level as u32;
        tree_size.checked_shr(shift).unwrap_or(0)
    }

    /// Whether a tree of `tree_size` leaves holds every hash or entry of
    /// this tile (else it is beyond the tree: C2SP serves no empty tile and
    /// no part of a tile the tree does not have yet).
    pub fn within(&self, tree_size: u64) -> bool {
        let available = match self.kind {
            TileKind::Hashes { level } => Self::hashes_at_level(level, tree_size),
            TileKind::Entries => tree_size,
        };
        self.span().is_some_and(|(_, end)| end <= available)
    }

    /// The stored-hash indexes (`merkle::stored_hash_index`) of a hash
    /// tile's hashes, in order; `None` for an entry bundle or a tile beyond
    /// a tree of `tree_size` leaves.
    pub fn stored_hash_indexes(&self, tree_size: u64) -> Option<Vec<i64>> {
        let TileKind::Hashes { level } = self.kind else {
            return None;
        };
        if !self.within(tree_size) {
            return None;
        }
        let (first, end) = self.span()?;
        // Within the tree, so every position is below 2^63.
        let tree_level = HEIGHT * level as u32;
        Some(
            (first..end)
                .map(|n| stored_hash_index(tree_level, n as i64))
                .collect(),
        )
    }

    /// The 0-based leaf indexes `first..end` of an entry bundle's entries;
    /// `None` for a hash tile or a bundle beyond a tree of `tree_size`.
    pub fn entry_range(&self, tree_size: u64) -> Option<(u64, u64)> {
        (self.kind == TileKind::Entries && self.within(tree_size))
            .then(|| self.span())
            .flatten()
    }
}

/// Why an entry cannot be put in a bundle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {leaf_index} is {len} bytes; a bundle entry holds at most 65,535")]
pub struct EntryTooLarge {
    pub leaf_index: u64,
    pub len: usize,
}

/// An entry bundle: each entry as a big-endian u16 length and the bytes,
/// in leaf order. `first_leaf` names the first entry in an error.
pub fn encode_bundle<'a>(
    first_leaf: u64,
    entries: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, EntryTooLarge> {
    let mut out = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let len = u16::try_from(entry.len()).map_err(|_| EntryTooLarge {
            leaf_index: first_leaf + i as u64,
            len: entry.len(),
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(entry);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{self, MemoryHashes};

    fn parse(path: &str) -> TilePath {
        TilePath::parse(path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn paths_parse_as_c2sp_spells_them() {
        assert_eq!(
            parse("0/x001/x234/067"),
            TilePath {
                kind: TileKind::Hashes { level: 0 },
                index: 1_234_067,
                width: 256
            }
        );
        assert_eq!(
            parse("entries/000.p/7"),
            TilePath {
                kind: TileKind::Entries,
                index: 0,
                width: 7
            }
        );
        assert_eq!(
            parse("63/x001/000.p/255"),
            TilePath {
                kind: TileKind::Hashes { level: 63 },
                index: 1000,
                width: 255
            }
        );
        for path in [
            "0/000",
            "1/x001/234.p/1",
            "entries/x999/999",
            "entries/x018/x446/x744/x073/x709/x551/615",
        ] {
            assert_eq!(parse(path).to_path(), path);
        }
    }

    #[test]
    fn malformed_paths_name_the_part_and_the_rule() {
        let cases = [
            ("00/000", "level"),
            ("64/000", "level"),
            ("-1/000", "level"),
            ("data/000", "level"),
            ("", "level"),
            ("0", "index"),
            ("0/", "index"),
            ("0/1", "index"),
            ("0/0001", "index"),
            ("0/x1/000", "index"),
            ("0/001/002", "index"),
            ("0/x000/001", "index"),
            ("0/x001/x002", "index"),
            ("0/000/", "index"),
            ("0/x018/x446/x744/x073/x709/x551/616", "index"),
            ("0/x001/x002/x003/x004/x005/x006/x007/008", "index"),
            ("0/000.p/0", "width"),
            ("0/000.p/256", "width"),
            ("0/000.p/07", "width"),
            ("0/000.p/", "width"),
            ("0/000.p/+5", "width"),
            ("entries/000.p/1/2", "index"),
            ("0/000.q/5", "index"),
        ];
        for (path, part) in cases {
            let error = TilePath::parse(path).expect_err(path);
            assert_eq!(error.part, part, "{path}: {error}");
            assert!(!error.message.is_empty());
        }
    }

    #[test]
    fn bounds_follow_the_tree_size() {
        // C2SP's example: a tree of 70,000 leaves has 273 full level-0 tiles
        // and one of width 112, one full level-1 tile and one of width 17,
        // and a level-2 tile of width 1.
        let size = 70_000;
        let tile = |level: u8, index: u64, width: u16| TilePath {
            kind: TileKind::Hashes { level },
            index,
            width,
        };
        assert!(tile(0, 272, 256).within(size));
        assert!(!tile(0, 273, 256).within(size));
        assert!(tile(0, 273, 112).within(size));
        assert!(!tile(0, 273, 113).within(size));
        assert!(tile(1, 0, 256).within(size));
        assert!(tile(1, 1, 17).within(size));
        assert!(!tile(1, 1, 18).within(size));
        assert!(tile(2, 0, 1).within(size));
        assert!(!tile(2, 0, 2).within(size));
        assert!(!tile(3, 0, 1).within(size));
        assert!(!tile(63, 0, 1).within(u64::MAX));
        // A narrower view of a full tile is served too (its hashes exist).
        assert!(tile(0, 0, 5).within(size));
        assert!(!tile(0, u64::MAX, 256).within(u64::MAX));
        let bundle = TilePath {
            kind: TileKind::Entries,
            index: 273,
            width: 112,
        };
        assert_eq!(bundle.entry_range(size), Some((69_888, 70_000)));
        assert_eq!(
            TilePath {
                width: 113,
                ..bundle
            }
            .entry_range(size),
            None
        );
        assert_eq!(bundle.stored_hash_indexes(size), None);
    }

    #[test]
    fn hash_tiles_are_the_stored_subtree_hashes() {
        // A tree of 600 leaves held in memory: a level-0 tile's hashes are
        // the leaf hashes, a level-1 tile's the roots of each 256 leaves.
        let leaves: Vec<Vec<u8>> = (0..600u32).map(|i| i.to_be_bytes().to_vec()).collect();
        let mut stored = MemoryHashes::default();
        for leaf in &leaves {
            stored.append_leaf(merkle::leaf_hash(leaf)).unwrap();
        }
        let read = |tile: &TilePath| {
            let indexes = tile.stored_hash_indexes(600).unwrap();
            merkle::HashReader::read_hashes(&stored, &indexes).unwrap()
        };
        let level0 = read(&parse("0/002.p/88"));
        assert_eq!(level0.len(), 88);
        for (i, hash) in level0.iter().enumerate() {
            assert_eq!(*hash, merkle::leaf_hash(&leaves[512 + i]));
        }
        let level1 = read(&parse("1/000.p/2"));
        let full = read(&parse("0/001"));
        assert_eq!(level1[1], subtree_root(&full));
        // Root of the 512-leaf prefix from the level-1 tile alone.
        let root_512 = merkle::node_hash(&level1[0], &level1[1]);
        let prefix = MemoryHashes(stored.0[..merkle::stored_hash_count(512) as usize].to_vec());
        let indexes = merkle::tree_hash_indexes(512);
        let hashes = merkle::HashReader::read_hashes(&prefix, &indexes).unwrap();
        let map = merkle::PrefetchedHashes(indexes.into_iter().zip(hashes).collect());
        assert_eq!(merkle::tree_hash(512, &map).unwrap(), root_512);
    }

    /// C2SP's example tree of 70,000 leaves, every tile of it read both
    /// ways: through our stored-hash indexes, and by the `tlog_tiles` crate
    /// (a port of Go's sumdb/tlog) from the same stored hashes; then each
    /// full tile's subtree root is the hash the tile above holds for it.
    #[test]
    fn every_tile_of_a_three_level_tree_matches_go_tlogs_arithmetic() {
        struct Theirs<'a>(&'a MemoryHashes);
        impl tlog_tiles::HashReader for Theirs<'_> {
            fn read_hashes(
                &self,
                indexes: &[u64],
            ) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
                let ours: Vec<i64> = indexes.iter().map(|&i| i as i64).collect();
                let hashes = merkle::HashReader::read_hashes(self.0, &ours)
                    .map_err(|e| tlog_tiles::Error::InvalidInput(e.to_string()))?;
                Ok(hashes.into_iter().map(tlog_tiles::Hash).collect())
            }
        }
        let size = 70_000u64;
        let mut stored = MemoryHashes::default();
        for i in 0..size {
            stored
                .append_leaf(merkle::leaf_hash(&i.to_be_bytes()))
                .unwrap();
        }
        let tiles = tlog_tiles::Tile::new_tiles(8, 0, size);
        // 273 + 1 at level 0, 1 + 1 at level 1, 1 at level 2.
        assert_eq!(tiles.len(), 277);
        let mut read = std::collections::HashMap::new();
        for theirs in &tiles {
            let ours = TilePath {
                kind: TileKind::Hashes {
                    level: theirs.level(),
                },
                index: theirs.level_index(),
                width: theirs.width() as u16,
            };
            // Go's path minus the height is C2SP's.
            assert_eq!(
                format!("tile/8/{}", ours.to_path()),
                theirs.path(),
                "{ours:?}"
            );
            let indexes = ours.stored_hash_indexes(size).unwrap();
            let data: Vec<u8> = merkle::HashReader::read_hashes(&stored, &indexes)
                .unwrap()
                .concat();
            assert_eq!(
                data,
                theirs.read_data(&Theirs(&stored)).unwrap(),
                "{ours:?}"
            );
            assert!(
                !TilePath {
                    width: ours.width + 1,
                    ..ours
                }
                .within(size)
                    || ours.is_full()
            );
            read.insert((theirs.level(), theirs.level_index()), data);
        }
        for ((level, index), data) in &read {
            if data.len() != 256 * 32 || *level == 2 {
                continue;
            }
            let hashes: Vec<merkle::Hash> =
                data.chunks(32).map(|c| c.try_into().unwrap()).collect();
            let above = &read[&(level + 1, index / 256)];
            let at = (index % 256) as usize * 32;
            assert_eq!(
                subtree_root(&hashes)[..],
                above[at..at + 32],
                "{level}/{index}"
            );
        }
    }

    fn subtree_root(hashes: &[merkle::Hash]) -> merkle::Hash {
        if hashes.len() == 1 {
            return hashes[0];
        }
        let (left, right) = hashes.split_at(hashes.len() / 2);
        merkle::node_hash(&subtree_root(left), &subtree_root(right))
    }

    #[test]
    fn bundles_are_u16_length_prefixed() {
        let bundle = encode_bundle(0, [b"ab".as_slice(), b"".as_slice(), b"xyz"]).unwrap();
        assert_eq!(bundle, b"\x00\x02ab\x00\x00\x00\x03xyz");
        let big = vec![0u8; 65_536];
        assert_eq!(
            encode_bundle(7, [b"a".as_slice(), &big]),
            Err(EntryTooLarge {
                leaf_index: 8,
                len: 65_536
            })
        );
        let max = vec![1u8; 65_535];
        assert_eq!(encode_bundle(0, [max.as_slice()]).unwrap().len(), 65_537);
    }
}
