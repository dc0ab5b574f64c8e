//! Office checkpoints at sync (the format is `cairn_protocol::checkpoint`): after its pull the
//! office publishes a generation of the documents that changed; a device that has pulled
//! nothing yet loads its team's checkpoints first (the office and its staff devices, every
//! team's) and then pulls only what came after them.

use cairn_crypto::{SealedChange, SealedKind};
use cairn_protocol::checkpoint::{follows, Entry, Loaded, Part, PartBody, PartHeader};
use cairn_protocol::{ErrorCode, PullPage, Roster, OFFICE_TEAM};
use cairn_vault::{Role, SyncState, TeamLoaded, Vault};

use crate::engine::{retry, Link, Summary};
use crate::roster::stored_roster;
use crate::SyncError;

/// At the office, after its pull: posts the generation it made and the server has not
/// confirmed, or makes and posts the next one if anything changed. A failure is said, never
/// fatal: the changes themselves are on the server, and the next sync posts the parts again.
pub(crate) async fn publish_step(
    link: &Link<'_>,
    vault: &mut Vault,
    state: &SyncState,
    summary: &mut Summary,
) -> Result<(), SyncError> {
    if vault.settings().role != Role::Office {
        return Ok(());
    }
    if let Err(e) = publish(link, vault, state, summary).await {
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
    state: &SyncState,
    summary: &mut Summary,
) -> Result<(), SyncError> {
    let mut parts = vault.pending_checkpoint()?;
    if parts.is_empty() {
        match vault.make_checkpoint(state.cursor, time::OffsetDateTime::now_utc())? {
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
/// device reads, then starts the pull at the lowest cursor they reach. A part that does not
/// verify, is not the office's, is another team's or does not follow what was loaded is
/// refused and said; the pull then starts where the loaded ones end (from the beginning when
/// none was), so nothing is lost.
pub(crate) async fn cold_start_step(
    link: &Link<'_>,
    vault: &mut Vault,
    state: &mut SyncState,
    summary: &mut Summary,
) -> Result<(), SyncError> {
    let loaded = vault.checkpoints_loaded()?;
    let unfinished = loaded.values().any(|t| !t.loaded.whole());
    if state.cursor != 0 && !unfinished {
        return Ok(());
    }
    let roster = stored_roster(state)?;
    let me = vault.keys().id();
    let teams: Vec<String> = if roster.speaks_for_office(&me) {
        let mut teams: Vec<String> = roster.members().map(|m| m.team.clone()).collect();
        teams.push(OFFICE_TEAM.to_owned());
        teams.sort();
        teams.dedup();
        teams
    } else {
        match roster.member(&me) {
            Some(member) => vec![member.team.clone()],
            None => return Ok(()),
        }
    };
    let mut start = u64::MAX;
    for team in &teams {
        let cursor =
            team_chain(link, vault, state, summary, &roster, team, loaded.get(team)).await?;
        start = start.min(cursor);
    }
    if start != u64::MAX && start > state.cursor {
        vault.start_pull_at(start)?;
        state.cursor = start;
    }
    Ok(())
}

/// Loads `team`'s parts after those held; the cursor of the last generation loaded whole
/// (0 if none).
async fn team_chain(
    link: &Link<'_>,
    vault: &mut Vault,
    state: &mut SyncState,
    summary: &mut Summary,
    roster: &Roster,
    team: &str,
    held: Option<&TeamLoaded>,
) -> Result<u64, SyncError> {
    let mut last: Option<Loaded> = held.map(|t| t.loaded);
    let mut cursor = held.filter(|t| t.loaded.whole()).map_or(0, |t| t.cursor);
    loop {
        let after = last.map(|l| (l.generation, l.part));
        let page = match retry(link.options, summary, || {
            link.client.checkpoints(vault.keys(), team, after)
        })
        .await
        {
            Ok(page) => page,
            // None held yet, or a server that keeps none: the pull brings everything.
            Err(SyncError::Refused {
                code: Some(ErrorCode::NotFound),
                ..
            }) => return Ok(cursor),
            Err(e @ SyncError::Vault(_)) => return Err(e),
            Err(e) => {
                summary.warnings.push(format!(
                    "team {team}'s office checkpoints could not be fetched ({e}); the changes after the last one loaded are pulled one by one instead"
                ));
                return Ok(cursor);
            }
        };
        for bytes in &page.parts {
            let checked = open_part(bytes, vault, roster, team)
                .and_then(|part| follows(last, &part).map(|next| (part, next)));
            let (part, next) = match checked {
                Ok(checked) => checked,
                Err(reason) => {
                    summary.warnings.push(format!(
                        "an office checkpoint of team {team} was refused ({reason}); the changes after the last one loaded are pulled one by one instead"
                    ));
                    return Ok(cursor);
                }
            };
            // Changes the office could not fold into a document are judged as pulled ones.
            let logged: Vec<(u64, Vec<u8>)> = part
                .body
                .entries
                .iter()
                .flat_map(|e| match e {
                    Entry::Log { changes } => changes.as_slice(),
                    Entry::Doc { .. } => &[],
                })
                .map(|bytes| (0, bytes.clone()))
                .collect();
            if !logged.is_empty() {
                let page = PullPage {
                    acked: state.acked,
                    next: state.cursor,
                    more: false,
                    changes: logged,
                };
                crate::pull::apply(vault, state, summary, roster, page)?;
            }
            let loading = vault.load_checkpoint(&part)?;
            cairn_vault::failpoint::hit("checkpoint:loaded");
            summary.from_checkpoints += loading.cases as u64;
            link.progress.pulled(loading.changes as u64);
            last = Some(next);
            if next.whole() {
                cursor = part.body.cursor;
            }
        }
        if !page.more || page.parts.is_empty() {
            return Ok(cursor);
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
