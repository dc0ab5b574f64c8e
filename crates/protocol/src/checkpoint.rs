//! Office checkpoints: the compacted documents of a team's cases, sealed under the team's key
//! and signed by the office, so that a device starting cold loads each case whole instead of
//! verifying, decrypting and judging every change ever made to it.
//!
//! A checkpoint part travels as a [`SealedChange`] of kind [`SealedKind::Checkpoint`], written by
//! the office: its number is the checkpoint's *generation* (one per office run, the same for every
//! team), its team the team whose cases it holds, and its id field says where the part sits:
//!
//! ```text
//! id = part u32 | parts u32 | full u8 (0 or 1) | 7 zero bytes
//! ```
//!
//! A *full* generation holds every case of the team; any other holds the cases changed since the
//! team's previous generation, which its body names (`prev`). The server keeps the newest full
//! generation of each team and those after it, and serves them in order: a device that loads them
//! all holds every change the office had received up to the body's `cursor`, and pulls the rest
//! from there. Body layout (deflated as a whole, integers big-endian, `v` an unsigned LEB128):
//!
//! ```text
//! "CCB1" | prev u64 (0: none) | cursor u64 | made_at i64 (unix seconds) |
//!   teams u32 | teams × (length u8 | team) |
//!   authors u32 | authors × 32 bytes |
//!   entries u32 | entries × ( 1 | case id 16 | covers v | covers × (author v | seq v | bytes v | ops v) |
//!                              doc length u32 | doc )
//!                           | ( 2 | changes u32 | changes × (length u32 | sealed change) ) |
//!   refused u32 | refused × (author v | seq v | digest 32)
//! ```
//!
//! A *doc* entry is a case's compacted Automerge document, with each change it holds (author,
//! number, sealed size, operations) so that delivery checks and budgets count them as received. A
//! *log* entry carries sealed changes as the office received them, for what it could not fold
//! into a document (a case waiting for a change it depends on, the office's own records): the
//! receiver judges those as it judges any pulled change.

use std::io::{Read, Write};

use cairn_crypto::{DeviceId, SealedChange, SealedKind};

use crate::error::malformed;
use crate::reader::Reader;
use crate::{ProtocolError, MAX_FRAME};

const MAGIC: &[u8; 4] = b"CCB1";
const PAGE_MAGIC: &[u8; 4] = b"CCK1";
/// The most bytes a part's body may inflate to: far above any part the office writes (it cuts
/// parts at [`PART_BYTES`]), small enough that no forged part fills a device's memory.
pub const MAX_BODY: usize = 64 << 20;
/// The office starts a new part once a part's documents reach this many bytes: deflated and
/// sealed, a part stays well under a server's smallest request limit (4 MiB by default).
pub const PART_BYTES: usize = 2 << 20;

/// Where a part sits in its generation (signed in the sealed header's id field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    /// Its index, from 0.
    pub part: u32,
    /// How many parts the generation has for this team.
    pub parts: u32,
    /// Whether the generation holds every case of the team.
    pub full: bool,
}

impl Place {
    /// The id field of the sealed header.
    pub fn to_id(self) -> [u8; 16] {
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&self.part.to_be_bytes());
        id[4..8].copy_from_slice(&self.parts.to_be_bytes());
        id[8] = u8::from(self.full);
        id
    }

    /// Reads the id field; refuses what no office writes.
    pub fn from_id(id: &[u8; 16]) -> Result<Place, ProtocolError> {
        let word = |i: usize| u32::from_be_bytes([id[i], id[i + 1], id[i + 2], id[i + 3]]);
        let (part, parts) = (word(0), word(4));
        let full = match id[8] {
            0 => false,
            1 => true,
            _ => return Err(malformed("checkpoint: its place has a bad `full` flag")),
        };
        if id[9..].iter().any(|b| *b != 0) || parts == 0 || part >= parts {
            return Err(malformed(format!(
                "checkpoint: part {part} of {parts} is no place in a generation"
            )));
        }
        Ok(Place { part, parts, full })
    }
}

/// Where a sealed checkpoint part sits, read from its header alone (what the server sees).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartHeader {
    /// The team whose cases it holds.
    pub team: String,
    /// Its generation.
    pub generation: u64,
    /// Its place in the generation.
    pub place: Place,
}

impl PartHeader {
    /// Reads a sealed part's header; refuses anything but a checkpoint.
    pub fn of(sealed: &SealedChange) -> Result<PartHeader, ProtocolError> {
        if sealed.kind != SealedKind::Checkpoint {
            return Err(malformed("checkpoint: the sealed unit is not a checkpoint"));
        }
        if sealed.seq == 0 {
            return Err(malformed("checkpoint: generation 0"));
        }
        Ok(PartHeader {
            team: sealed.team.clone(),
            generation: sealed.seq,
            place: Place::from_id(&sealed.case_id)?,
        })
    }
}

/// A change a document entry holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Covered {
    /// Its author, as an index into the body's authors.
    pub author: u32,
    /// The author's number.
    pub seq: u64,
    /// Its sealed size, less the vault's per-change overhead (what budgets count).
    pub bytes: u64,
    /// Its Automerge operations.
    pub ops: u64,
}

/// One entry of a part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A case's compacted document and the changes it holds.
    Doc {
        /// The case.
        case_id: [u8; 16],
        /// The changes it holds.
        covers: Vec<Covered>,
        /// `Automerge::save` of the case.
        doc: Vec<u8>,
    },
    /// Sealed changes as the office received them, judged again by the receiver.
    Log {
        /// Sealed change bytes, in the order the office received them.
        changes: Vec<Vec<u8>>,
    },
}

/// A change the office judged and refused: every replica refuses it, and counts it as
/// received for delivery checks, as the office's receipts do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Judged {
    /// Its author, as an index into the body's authors.
    pub author: u32,
    /// The author's number.
    pub seq: u64,
    /// SHA-256 of its sealed bytes (a different change under the number is a replay).
    pub digest: [u8; 32],
}

/// The plaintext of one part.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartBody {
    /// The team's previous generation this one adds to (`None` for a full one).
    pub prev: Option<u64>,
    /// The server cursor up to which the office had pulled every change.
    pub cursor: u64,
    /// When the office made it (Unix seconds).
    pub made_at: i64,
    /// Every team the generation has parts for (each team the office holds anything of): a
    /// device reading several teams starts its pull at the generation's cursor only once it
    /// holds the generation of each.
    pub teams: Vec<String>,
    /// The authors its entries name.
    pub authors: Vec<DeviceId>,
    /// Its entries.
    pub entries: Vec<Entry>,
    /// Changes the office refused since the team's previous generation (all, in a full one).
    pub refused: Vec<Judged>,
}

impl PartBody {
    /// The deflated binary form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.prev.unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&self.cursor.to_be_bytes());
        out.extend_from_slice(&self.made_at.to_be_bytes());
        put_u32(&mut out, self.teams.len());
        for team in &self.teams {
            let name = &team.as_bytes()[..team.len().min(cairn_crypto::MAX_TEAM)];
            out.push(name.len() as u8);
            out.extend_from_slice(name);
        }
        put_u32(&mut out, self.authors.len());
        for author in &self.authors {
            out.extend_from_slice(&author.0);
        }
        put_u32(&mut out, self.entries.len());
        for entry in &self.entries {
            match entry {
                Entry::Doc {
                    case_id,
                    covers,
                    doc,
                } => {
                    out.push(1);
                    out.extend_from_slice(case_id);
                    put_v(&mut out, covers.len() as u64);
                    for c in covers {
                        put_v(&mut out, u64::from(c.author));
                        put_v(&mut out, c.seq);
                        put_v(&mut out, c.bytes);
                        put_v(&mut out, c.ops);
                    }
                    put_u32(&mut out, doc.len());
                    out.extend_from_slice(doc);
                }
                Entry::Log { changes } => {
                    out.push(2);
                    put_u32(&mut out, changes.len());
                    for change in changes {
                        put_u32(&mut out, change.len());
                        out.extend_from_slice(change);
                    }
                }
            }
        }
        put_u32(&mut out, self.refused.len());
        for r in &self.refused {
            put_v(&mut out, u64::from(r.author));
            put_v(&mut out, r.seq);
            out.extend_from_slice(&r.digest);
        }
        let mut deflated = flate2::write::DeflateEncoder::new(
            Vec::with_capacity(out.len() / 2),
            flate2::Compression::default(),
        );
        // Writing to a Vec cannot fail.
        let _ = deflated.write_all(&out);
        deflated.finish().unwrap_or_default()
    }

    /// Inflates (at most [`MAX_BODY`] bytes) and parses; any truncation, excess or
    /// inconsistency is an error.
    pub fn decode(deflated: &[u8]) -> Result<PartBody, ProtocolError> {
        let mut plain = Vec::new();
        flate2::read::DeflateDecoder::new(deflated)
            .take(MAX_BODY as u64 + 1)
            .read_to_end(&mut plain)
            .map_err(|e| malformed(format!("checkpoint: its body does not inflate: {e}")))?;
        if plain.len() > MAX_BODY {
            return Err(malformed(format!(
                "checkpoint: its body inflates beyond {} MiB",
                MAX_BODY >> 20
            )));
        }
        let mut r = Reader::new(&plain, "checkpoint");
        if r.take(4)? != MAGIC {
            return Err(malformed("checkpoint: its body does not start with CCB1"));
        }
        let prev = Some(r.u64()?).filter(|g| *g != 0);
        let cursor = r.u64()?;
        let made_at = r.u64()? as i64;
        let count = r.u32()? as usize;
        let mut teams = Vec::with_capacity(count.min(r.rest.len()));
        for _ in 0..count {
            let len = r.take(1)?[0] as usize;
            let team = std::str::from_utf8(r.take(len)?)
                .map_err(|_| malformed("checkpoint: a team name is not text"))?;
            teams.push(team.to_owned());
        }
        let count = r.u32()? as usize;
        let mut authors = Vec::with_capacity(count.min(r.rest.len() / 32));
        for _ in 0..count {
            let mut id = [0u8; 32];
            id.copy_from_slice(r.take(32)?);
            authors.push(DeviceId(id));
        }
        let count = r.u32()? as usize;
        let mut entries = Vec::with_capacity(count.min(r.rest.len() / 8));
        for _ in 0..count {
            entries.push(match r.take(1)?[0] {
                1 => {
                    let mut case_id = [0u8; 16];
                    case_id.copy_from_slice(r.take(16)?);
                    let n = r.v()? as usize;
                    let mut covers = Vec::with_capacity(n.min(r.rest.len() / 4));
                    for _ in 0..n {
                        let author = u32::try_from(r.v()?)
                            .ok()
                            .filter(|a| (*a as usize) < authors.len())
                            .ok_or_else(|| malformed("checkpoint: a change names no author"))?;
                        covers.push(Covered {
                            author,
                            seq: r.v()?,
                            bytes: r.v()?,
                            ops: r.v()?,
                        });
                    }
                    let len = r.u32()? as usize;
                    Entry::Doc {
                        case_id,
                        covers,
                        doc: r.take(len)?.to_vec(),
                    }
                }
                2 => {
                    let n = r.u32()? as usize;
                    let mut changes = Vec::with_capacity(n.min(r.rest.len() / 4));
                    for _ in 0..n {
                        let len = r.u32()? as usize;
                        if len == 0 || len > MAX_FRAME {
                            return Err(malformed(format!(
                                "checkpoint: a change claims {len} bytes"
                            )));
                        }
                        changes.push(r.take(len)?.to_vec());
                    }
                    Entry::Log { changes }
                }
                other => {
                    return Err(malformed(format!(
                        "checkpoint: an entry of unknown kind {other}"
                    )))
                }
            });
        }
        let count = r.u32()? as usize;
        let mut refused = Vec::with_capacity(count.min(r.rest.len() / 34));
        for _ in 0..count {
            let author = u32::try_from(r.v()?)
                .ok()
                .filter(|a| (*a as usize) < authors.len())
                .ok_or_else(|| malformed("checkpoint: a refused change names no author"))?;
            let seq = r.v()?;
            let mut digest = [0u8; 32];
            digest.copy_from_slice(r.take(32)?);
            refused.push(Judged {
                author,
                seq,
                digest,
            });
        }
        if !r.rest.is_empty() {
            return Err(malformed(
                "checkpoint: bytes left over after the last entry",
            ));
        }
        Ok(PartBody {
            prev,
            cursor,
            made_at,
            teams,
            authors,
            entries,
            refused,
        })
    }
}

/// A part the office sealed, opened: its header and its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// Where it sits.
    pub header: PartHeader,
    /// What it holds.
    pub body: PartBody,
}

/// What a device holds of a team's checkpoints: the last part it loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Loaded {
    /// Its generation.
    pub generation: u64,
    /// Its index.
    pub part: u32,
    /// The generation's parts.
    pub parts: u32,
}

impl Loaded {
    /// Whether the generation it belongs to is wholly loaded.
    pub fn whole(&self) -> bool {
        self.part + 1 == self.parts
    }
}

/// Whether `part` may follow what this device holds of its team's checkpoints (`held`): the
/// next part of the same generation; or, once a generation is whole, a later full one or the
/// next one that names it as its previous; or, holding nothing, the first part of a full one.
/// So no server can serve an older checkpoint than one held, leave a part or a generation out,
/// or splice two chains.
pub fn follows(held: Option<Loaded>, part: &Part) -> Result<Loaded, String> {
    let (generation, place) = (part.header.generation, part.header.place);
    let next = Loaded {
        generation,
        part: place.part,
        parts: place.parts,
    };
    if place.full != part.body.prev.is_none() {
        return Err(format!(
            "checkpoint {generation}: a full generation names no previous one, and only a full one"
        ));
    }
    match held {
        Some(h) if generation < h.generation => Err(format!(
            "checkpoint {generation} is older than checkpoint {} already loaded here",
            h.generation
        )),
        Some(h) if generation == h.generation => {
            if place.parts == h.parts && place.part == h.part + 1 {
                Ok(next)
            } else {
                Err(format!(
                    "checkpoint {generation}: part {} of {} does not follow part {} of {} loaded here",
                    place.part + 1,
                    place.parts,
                    h.part + 1,
                    h.parts
                ))
            }
        }
        Some(h) if !h.whole() => Err(format!(
            "checkpoint {generation} arrived before checkpoint {} was whole here",
            h.generation
        )),
        _ if place.part != 0 => Err(format!(
            "checkpoint {generation}: its part {} arrived before its first",
            place.part + 1
        )),
        Some(h) if !place.full && part.body.prev != Some(h.generation) => Err(format!(
            "checkpoint {generation} adds to checkpoint {}, not to checkpoint {} loaded here",
            part.body.prev.unwrap_or(0),
            h.generation
        )),
        None if !place.full => Err(format!(
            "checkpoint {generation} adds to an earlier one, and none is loaded here"
        )),
        _ => Ok(next),
    }
}

/// The query of `GET /v2/checkpoints`: a team's parts after the part named (all of the team's
/// newest full generation and those after it, when none is named).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckpointQuery {
    /// The team (a field device may ask only for its own).
    pub team: String,
    /// Parts after this generation...
    pub generation: Option<u64>,
    /// ...and this part of it.
    pub part: Option<u32>,
}

/// The path and query of a checkpoint request, exactly as it is signed.
pub fn checkpoints_path(team: &str, after: Option<(u64, u32)>) -> String {
    match after {
        Some((generation, part)) => {
            format!("/v2/checkpoints?team={team}&generation={generation}&part={part}")
        }
        None => format!("/v2/checkpoints?team={team}"),
    }
}

/// One answer of `GET /v2/checkpoints`: sealed parts in order, and whether more wait.
///
/// ```text
/// "CCK1" | more u8 | count u32 | count × (length u32 | sealed part)
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointPage {
    /// Whether more parts wait after these.
    pub more: bool,
    /// Sealed parts, in (generation, part) order.
    pub parts: Vec<Vec<u8>>,
}

impl CheckpointPage {
    /// The binary form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + self.parts.iter().map(|p| 4 + p.len()).sum::<usize>());
        out.extend_from_slice(PAGE_MAGIC);
        out.push(u8::from(self.more));
        put_u32(&mut out, self.parts.len());
        for part in &self.parts {
            put_u32(&mut out, part.len());
            out.extend_from_slice(part);
        }
        out
    }

    /// Parses the binary form; any truncation or excess is an error.
    pub fn decode(bytes: &[u8]) -> Result<CheckpointPage, ProtocolError> {
        let mut r = Reader::new(bytes, "checkpoint page");
        if r.take(4)? != PAGE_MAGIC {
            return Err(malformed("checkpoint page: it does not start with CCK1"));
        }
        let more = match r.take(1)?[0] {
            0 => false,
            1 => true,
            _ => return Err(malformed("checkpoint page: `more` is not 0 or 1")),
        };
        let count = r.u32()? as usize;
        let mut parts = Vec::with_capacity(count.min(r.rest.len() / 4));
        for _ in 0..count {
            let len = r.u32()? as usize;
            if len == 0 || len > MAX_FRAME {
                return Err(malformed(format!(
                    "checkpoint page: a part claims {len} bytes"
                )));
            }
            parts.push(r.take(len)?.to_vec());
        }
        if !r.rest.is_empty() {
            return Err(malformed("checkpoint page: bytes left over"));
        }
        Ok(CheckpointPage { more, parts })
    }
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
}

fn put_v(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn body() -> PartBody {
        PartBody {
            prev: Some(4),
            cursor: 1234,
            made_at: 1_700_000_000,
            teams: vec!["T01".into(), "office".into()],
            authors: vec![DeviceId([7; 32]), DeviceId([9; 32])],
            entries: vec![
                Entry::Doc {
                    case_id: [1; 16],
                    covers: vec![
                        Covered {
                            author: 1,
                            seq: 300,
                            bytes: 200,
                            ops: 12,
                        },
                        Covered {
                            author: 0,
                            seq: 1,
                            bytes: 90,
                            ops: 1,
                        },
                    ],
                    doc: vec![5; 300],
                },
                Entry::Log {
                    changes: vec![vec![1, 2, 3], vec![4; 20]],
                },
            ],
            refused: vec![Judged {
                author: 1,
                seq: 7,
                digest: [3; 32],
            }],
        }
    }

    #[test]
    fn a_body_round_trips_and_every_cut_is_an_error() {
        let encoded = body().encode();
        assert_eq!(PartBody::decode(&encoded).unwrap(), body());
        assert_eq!(
            PartBody::decode(&PartBody::default().encode()).unwrap(),
            PartBody::default()
        );
        for cut in 0..encoded.len() {
            assert!(PartBody::decode(&encoded[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn a_body_that_inflates_beyond_its_bound_is_refused() {
        let mut deflated =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        deflated.write_all(MAGIC).unwrap();
        for _ in 0..(MAX_BODY / (1 << 20) + 1) {
            deflated.write_all(&vec![0u8; 1 << 20]).unwrap();
        }
        let bomb = deflated.finish().unwrap();
        assert!(bomb.len() < 200_000);
        let err = PartBody::decode(&bomb).unwrap_err().to_string();
        assert!(err.contains("inflates beyond"), "{err}");
    }

    #[test]
    fn places_round_trip_and_impossible_ones_are_refused() {
        for place in [
            Place {
                part: 0,
                parts: 1,
                full: true,
            },
            Place {
                part: 6,
                parts: 7,
                full: false,
            },
        ] {
            assert_eq!(Place::from_id(&place.to_id()).unwrap(), place);
        }
        let mut id = Place {
            part: 0,
            parts: 1,
            full: true,
        }
        .to_id();
        id[15] = 1;
        assert!(Place::from_id(&id).is_err());
        assert!(Place::from_id(
            &Place {
                part: 2,
                parts: 2,
                full: true
            }
            .to_id()
        )
        .is_err());
        assert!(Place::from_id(&[0; 16]).is_err());
    }

    fn part(generation: u64, part: u32, parts: u32, prev: Option<u64>) -> Part {
        Part {
            header: PartHeader {
                team: "T01".into(),
                generation,
                place: Place {
                    part,
                    parts,
                    full: prev.is_none(),
                },
            },
            body: PartBody {
                prev,
                ..PartBody::default()
            },
        }
    }

    #[test]
    fn a_chain_is_taken_only_whole_and_in_order() {
        let held = |generation, part, parts| {
            Some(Loaded {
                generation,
                part,
                parts,
            })
        };
        // From nothing: only a full generation's first part.
        assert!(follows(None, &part(3, 0, 2, None)).is_ok());
        assert!(follows(None, &part(3, 1, 2, None)).is_err());
        assert!(follows(None, &part(4, 0, 1, Some(3))).is_err());
        // Within a generation: the next part only.
        assert!(follows(held(3, 0, 2), &part(3, 1, 2, None)).is_ok());
        assert!(follows(held(3, 0, 3), &part(3, 2, 3, None)).is_err());
        assert!(follows(held(3, 0, 2), &part(3, 0, 2, None)).is_err());
        // After a whole generation: the one naming it, or any later full one.
        assert!(follows(held(3, 1, 2), &part(4, 0, 1, Some(3))).is_ok());
        assert!(follows(held(3, 1, 2), &part(5, 0, 1, Some(4))).is_err());
        assert!(follows(held(3, 1, 2), &part(9, 0, 1, None)).is_ok());
        // Not before the held generation is whole; never older.
        assert!(follows(held(3, 0, 2), &part(4, 0, 1, Some(3))).is_err());
        assert!(follows(held(5, 0, 1), &part(4, 0, 1, None)).is_err());
        // A full flag and a previous generation contradict each other.
        let mut odd = part(6, 0, 1, Some(5));
        odd.header.place.full = true;
        assert!(follows(held(5, 0, 1), &odd).is_err());
    }

    #[test]
    fn a_page_round_trips_and_every_cut_is_an_error() {
        let page = CheckpointPage {
            more: true,
            parts: vec![vec![1; 10], vec![2; 3]],
        };
        let bytes = page.encode();
        assert_eq!(CheckpointPage::decode(&bytes).unwrap(), page);
        for cut in 0..bytes.len() {
            assert!(CheckpointPage::decode(&bytes[..cut]).is_err(), "cut {cut}");
        }
    }
}
