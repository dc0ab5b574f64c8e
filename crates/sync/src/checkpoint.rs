//! Office checkpoints at sync (the format is `cairn_protocol::checkpoint`): after its pull the
//! office publishes a generation of the documents that changed; a device that has pulled
//! nothing yet loads its team's checkpoints first (the office and its staff devices, every
//! team's) and then pulls only what came after them.

use cairn_crypto::{SealedChange, SealedKind};
use cairn_protocol::checkpoint::{follows, Entry, Loaded, Part, PartBody, PartHeader};
use std::collections::BTreeMap;

use cairn_protocol::{Roster, OFFICE_TEAM};
use cairn_vault::{Role, TeamLoaded, Vault};

use crate::engine::{retry, Link, Summary};
use crate::roster::stored_roster;
use crate::SyncError;

/// At the office, after its pull: posts the generation it made and the server has not
/// confirmed, or makes and posts the next one if anything changed. A failure is said, never
/// fatal: the changes themselves are on the server, and the next sync posts the parts again.
pub(crate) async fn publish_step(
    link: &Link<'_>,
    vault: &mut Vault,
    summary: &mut Summary,
) -> Result<(), SyncError> {
    if vault.settings().role != Role::Office {
        return Ok(());
    }
    if let Err(e) = publish(link, vault, summary).await {
        if let SyncError::Vault(_) = e {
            return Err(e);
        }
        summary.warnings.push(format!(
            "the office's checkpoint did not reach the server ({e}); it is sent again at the next sync"
        ));
    }
    Ok(())
}

async fn publish(
    link: &Link<'_>,
    vault: &mut Vault,
    summary: &mut Summary,
) -> Result<(), SyncError> {
    let mut parts = vault.pending_checkpoint()?;
    // Only what the server holds goes into a checkpoint: were this office lost before its
    // own changes reached the server, the devices that pulled before would never get them.
    if parts.is_empty() && vault.own_log_len()? > vault.outbox_progress()?.acked {
        return Ok(());
    }
    if parts.is_empty() {
        let cursor = vault.pull_cursor()?;
        match vault.make_checkpoint(cursor, time::OffsetDateTime::now_utc())? {
            Some(generation) => {
                tracing::info!(
                    generation = generation.generation,
                    parts = generation.parts.len(),
                    cases = generation.cases,
                    "checkpoint made"
                );
                parts = generation.parts;
                cairn_vault::failpoint::hit("checkpoint:made");
            }
            None => return Ok(()),
        }
    }
    // One part a request: each fits the server's request limit on its own.
    for part in &parts {
        retry(link.options, summary, || {
            link.client
                .post_checkpoints(vault.keys(), std::slice::from_ref(part))
        })
        .await?;
    }
    cairn_vault::failpoint::hit("checkpoint:posted");
    vault.checkpoint_posted()?;
    Ok(())
}

/// Before the first pull (or to finish one cut off): loads the checkpoints of each team this
/// device reads, then starts the pull where they end. A part that does not verify, is not the
/// office's, is another team's or does not follow what was loaded is refused and said; the
/// pull then starts where the parts loaded end (from the beginning when none was), so nothing
/// is lost.
pub(crate) async fn cold_start_step(
    link: &Link<'_>,
    vault: &mut Vault,
    summary: &mut Summary,
) -> Result<(), SyncError> {
    let loaded = vault.checkpoints_loaded()?;
    let unfinished = loaded.values().any(|t| !t.loaded.whole());
    if vault.pull_cursor()? != 0 && !unfinished {
        return Ok(());
    }
    let roster = stored_roster(vault)?;
    let me = vault.keys().id();
    let every_team = roster.speaks_for_office(&me);
    let mut wanted: Vec<String> = if every_team {
        let mut teams: Vec<String> = roster.members().map(|m| m.team.clone()).collect();
        teams.push(OFFICE_TEAM.to_owned());
        teams
    } else {
        match roster.member(&me) {
            Some(member) => vec![member.team.clone()],
            None => return Ok(()),
        }
    };
    let mut reached: BTreeMap<String, Reached> = BTreeMap::new();
    // Bounded: each round adds teams a generation names that were not asked for yet.
    for _ in 0..4 {
        wanted.sort();
        wanted.dedup();
        wanted.retain(|t| !reached.contains_key(t));
        if wanted.is_empty() {
            break;
        }
        for team in std::mem::take(&mut wanted) {
            let held = loaded.get(&team);
            let got = team_chain(link, vault, summary, &roster, &team, held.cloned()).await?;
            if every_team {
                wanted.extend(got.teams.iter().cloned());
            }
            reached.insert(team, got);
        }
    }
    // A field device reads one team: its chain's cursor is where its pull starts.
    let start = match every_team {
        true => start_after(&reached),
        false => reached.values().next().map_or(0, |r| r.cursor),
    };
    // The pull begins where the checkpoints end: the cursor alone, moved as a pull page
    // with no change moves it (never back).
    if start > vault.pull_cursor()? {
        crate::pull::apply(vault, summary, &roster, Vec::new(), start)?;
    }
    Ok(())
}

/// How far a team's checkpoints were loaded.
#[derive(Clone, Debug, Default)]
struct Reached {
    /// The last generation loaded whole, with its cursor and the teams it has parts for.
    generation: Option<u64>,
    cursor: u64,
    teams: Vec<String>,
    /// Whether the server had nothing more after it and nothing was refused.
    complete: bool,
}

/// Where the pull starts after the checkpoints loaded: the cursor of the newest generation
/// loaded whole, if every team it has parts for was loaded whole up to it; otherwise the
/// lowest cursor any of those teams reached (a change between two cursors comes again as a
/// duplicate; none is skipped).
fn start_after(reached: &BTreeMap<String, Reached>) -> u64 {
    let Some((newest, teams)) = reached
        .values()
        .filter_map(|r| r.generation.map(|g| (g, &r.teams)))
        .max_by_key(|(g, _)| *g)
    else {
        return 0;
    };
    let of = |team: &String| reached.get(team).cloned().unwrap_or_default();
    if teams
        .iter()
        .all(|t| of(t).generation == Some(newest) && of(t).complete)
    {
        reached
            .values()
            .find(|r| r.generation == Some(newest))
            .map_or(0, |r| r.cursor)
    } else {
        teams.iter().map(|t| of(t).cursor).min().unwrap_or(0)
    }
}

/// Loads `team`'s parts after those held.
async fn team_chain(
    link: &Link<'_>,
    vault: &mut Vault,
    summary: &mut Summary,
    roster: &Roster,
    team: &str,
    held: Option<TeamLoaded>,
) -> Result<Reached, SyncError> {
    let mut last: Option<Loaded> = held.as_ref().map(|t| t.loaded);
    let mut reached = match held.filter(|t| t.loaded.whole()) {
        Some(t) => Reached {
            generation: Some(t.loaded.generation),
            cursor: t.cursor,
            teams: t.teams,
            complete: false,
        },
        None => Reached::default(),
    };
    loop {
        let after = last.map(|l| (l.generation, l.part));
        let page = match retry(link.options, summary, || {
            link.client.checkpoints(vault.keys(), team, after)
        })
        .await
        {
            Ok(page) => page,
            // The server answered and refused, or answered what is not the protocol (one
            // without checkpoints): said, and the pull brings the rest. Anything else (no
            // answer, the vault) fails the sync as the pull itself would.
            Err(e @ (SyncError::Refused { .. } | SyncError::Protocol(_))) if !e.is_transient() => {
                summary.warnings.push(format!(
                    "team {team}'s office checkpoints could not be fetched ({e}); the changes after the last one loaded are pulled one by one instead"
                ));
                return Ok(reached);
            }
            Err(e) => return Err(e),
        };
        for bytes in &page.parts {
            let checked = open_part(bytes, vault, roster, team)
                .and_then(|part| follows(last, &part).map(|next| (part, next)));
            let (mut part, next) = match checked {
                Ok(checked) => checked,
                Err(reason) => {
                    summary.warnings.push(format!(
                        "an office checkpoint of team {team} was refused ({reason}); the changes after the last one loaded are pulled one by one instead"
                    ));
                    return Ok(reached);
                }
            };
            // A field device keeps what the office refused of its own team's devices only: it
            // never receives another team's changes, so their numbers would read as gaps.
            if !roster.speaks_for_office(&vault.keys().id()) {
                let authors = &part.body.authors;
                part.body.refused.retain(|r| {
                    authors
                        .get(r.author as usize)
                        .and_then(|a| roster.member(a))
                        .is_some_and(|m| m.team.eq_ignore_ascii_case(team))
                });
            }
            // Changes the office could not fold into a document are judged as pulled ones.
            let logged: Vec<Vec<u8>> = part
                .body
                .entries
                .iter()
                .flat_map(|e| match e {
                    Entry::Log { changes } => changes.as_slice(),
                    Entry::Doc { .. } => &[],
                })
                .cloned()
                .collect();
            if !logged.is_empty() {
                // The cursor stays: it moves once every team's parts are in.
                let cursor = vault.pull_cursor()?;
                crate::pull::apply(vault, summary, roster, logged, cursor)?;
            }
            let loading = vault.load_checkpoint(&part)?;
            cairn_vault::failpoint::hit("checkpoint:loaded");
            summary.from_checkpoints += loading.cases as u64;
            link.progress.pulled(loading.changes as u64);
            last = Some(next);
            if next.whole() {
                reached = Reached {
                    generation: Some(next.generation),
                    cursor: part.body.cursor,
                    teams: part.body.teams,
                    complete: false,
                };
            }
        }
        if !page.more || page.parts.is_empty() {
            reached.complete = last.is_some_and(|l| l.whole());
            return Ok(reached);
        }
    }
}

/// Verifies and opens one part: the office's, for `team`, under a key this device holds.
fn open_part(bytes: &[u8], vault: &Vault, roster: &Roster, team: &str) -> Result<Part, String> {
    let sealed = SealedChange::from_bytes(bytes).map_err(|e| e.to_string())?;
    if sealed.kind != SealedKind::Checkpoint {
        return Err("it is not a checkpoint".into());
    }
    if sealed.author != roster.office().signing {
        return Err(format!(
            "it is signed by device {}, not by the office",
            sealed.author.short()
        ));
    }
    if !sealed.team.eq_ignore_ascii_case(team) {
        return Err(format!(
            "it holds team {}'s cases, not team {team}'s",
            sealed.team
        ));
    }
    let header = PartHeader::of(&sealed).map_err(|e| e.to_string())?;
    let plain = sealed.open(vault.keyring()).map_err(|e| e.to_string())?;
    let body = PartBody::decode(&plain).map_err(|e| e.to_string())?;
    Ok(Part { header, body })
}
