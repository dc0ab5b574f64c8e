//! `cairn office ...`: the office's public keys, admissions and revocations.

use cairn_protocol::{unix_now, OfficeKeys};
use cairn_sync::BlockingSync;
use cairn_vault::{Role, Vault};

use crate::cli::{AdmitArgs, OfficeCommand, PubkeyArgs, RestoreArgs, RevokeArgs};
use crate::config::Config;
use crate::error::CliError;
use crate::output;
use crate::vault_cmd::open;

pub fn run(config: &Config, cmd: OfficeCommand) -> Result<(), CliError> {
    match cmd {
        OfficeCommand::Pubkey(args) => pubkey(config, args),
        OfficeCommand::Admit(args) => admit(config, args),
        OfficeCommand::Revoke(args) => revoke(config, args),
        OfficeCommand::Restore(args) => restore(config, args),
        OfficeCommand::Inbox(args) => inbox(config, args.json),
        OfficeCommand::Review(args) => review(config, args),
        OfficeCommand::Match(args) => crate::matching::run(config, args),
        OfficeCommand::Serve(args) => crate::web::serve(config, args),
        OfficeCommand::Places(cmd) => crate::places::office(config, cmd),
        OfficeCommand::Key(cmd) => crate::office_key::run(config, cmd),
    }
}

/// Cases changed by a device other than the office since its last review, and confirmed
/// cases whose counted fields changed since the office confirmed them: those first (as ODK
/// Central's "edited"), then oldest change first.
fn inbox(config: &Config, json: bool) -> Result<(), CliError> {
    let vault = open_office(config)?;
    let all = vault.list()?;
    let contradicts = contradictions(&all);
    let mut cases: Vec<_> = all
        .into_iter()
        .filter(|c| {
            c.needs_review
                || !c.changed_since_confirmed.is_empty()
                || contradicts.contains_key(&c.reference)
        })
        .collect();
    // Contradicted links first, then confirmed cases edited since, then by time.
    cases.sort_by(|a, b| {
        let calm = |c: &cairn_vault::CaseSummary| {
            (
                !contradicts.contains_key(&c.reference),
                c.changed_since_confirmed.is_empty(),
            )
        };
        (calm(a), &a.changed_at).cmp(&(calm(b), &b.changed_at))
    });
    if json {
        /// A case of the inbox, with the cases a contradicted decision names, if any.
        #[derive(serde::Serialize)]
        struct Entry<'a> {
            #[serde(flatten)]
            case: &'a cairn_vault::CaseSummary,
            #[serde(skip_serializing_if = "Option::is_none")]
            contradicts: Option<&'a Vec<String>>,
        }
        let list: Vec<Entry<'_>> = cases
            .iter()
            .map(|case| Entry {
                case,
                contradicts: contradicts.get(&case.reference),
            })
            .collect();
        return output::json(&list);
    }
    if cases.is_empty() {
        return output::print("inbox empty: every case was reviewed since its last change\n");
    }
    let names = crate::output::Names::of(&vault)?;
    let by: Vec<String> = cases.iter().map(|c| names.label(&c.changed_by)).collect();
    let width = cases.iter().map(|c| c.reference.len()).max().unwrap_or(9);
    let by_width = by
        .iter()
        .map(|b| b.chars().count())
        .max()
        .unwrap_or(2)
        .max(2);
    let mut text = format!(
        "{:width$}  {:8}  {:19}  {:10}  {:25}  {:by_width$}  CONFLICTS\n",
        "REFERENCE", "KIND", "STATUS", "REVIEW", "CHANGED", "BY"
    );
    for (c, by) in cases.iter().zip(&by) {
        // A confirmed case edited since reads "edited", as in ODK Central.
        let review = match c.review.as_deref() {
            _ if !c.changed_since_confirmed.is_empty() => "edited",
            Some(review) => review,
            None => "new",
        };
        text.push_str(&format!(
            "{:width$}  {:8}  {:19}  {:10}  {:25}  {:by_width$}  {}\n",
            c.reference,
            c.kind,
            c.status,
            review,
            c.changed_at,
            by,
            if c.conflicts {
                "yes: see `cairn case conflicts`"
            } else {
                ""
            }
        ));
        if let Some(others) = contradicts.get(&c.reference) {
            text.push_str(&format!(
                "{:width$}  one person with {}, which the office decided is distinct: see `cairn case links`\n",
                "",
                others.join(", ")
            ));
        }
        if !c.changed_since_confirmed.is_empty() {
            let fields: Vec<&str> = c
                .changed_since_confirmed
                .iter()
                .map(|f| f.field.as_str())
                .collect();
            text.push_str(&format!(
                "{:width$}  changed since confirmed: {}; counted as confirmed until `cairn case verify` confirms it again\n",
                "",
                fields.join(", ")
            ));
        }
    }
    output::print(&text)
}

/// For each case in a person that holds a pair the office decided are distinct, the other
/// cases of such pairs, by reference.
pub(crate) fn contradictions(
    all: &[cairn_vault::CaseSummary],
) -> std::collections::HashMap<String, Vec<String>> {
    let ids: Vec<String> = all.iter().map(|c| c.id.to_string()).collect();
    let persons = cairn_model::persons(
        ids.iter()
            .zip(all)
            .map(|(id, c)| (id.as_str(), c.links.as_slice())),
    );
    let mut out: std::collections::HashMap<String, Vec<String>> = Default::default();
    for (a, b) in persons.contradictions {
        let (a, b) = (&all[a].reference, &all[b].reference);
        out.entry(a.clone()).or_default().push(b.clone());
        out.entry(b.clone()).or_default().push(a.clone());
    }
    out
}

fn review(config: &Config, args: crate::cli::ReviewArgs) -> Result<(), CliError> {
    let state = clap::ValueEnum::to_possible_value(&args.state)
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default();
    let edit = cairn_model::Edit::Review {
        state,
        comment: args.comment,
    };
    edit.check()?;
    let mut vault = open_office(config)?;
    match vault.edit_case(&args.reference, &[edit], time::OffsetDateTime::now_utc())? {
        Some(seq) => output::print(&format!("{}: reviewed (change {seq})\n", args.reference)),
        None => output::print(&format!("{}: nothing changed\n", args.reference)),
    }
}

/// The vault of a device deciding for the office: the office's or a staff device's.
pub(crate) fn open_office(config: &Config) -> Result<Vault, CliError> {
    let vault = open(config)?;
    if !vault.speaks_for_office() {
        return Err(CliError::usage(
            "this is a field vault; office commands need the office's vault or a staff device's (`cairn init --office` or `--staff`)",
        ));
    }
    Ok(vault)
}

/// The office's own vault, holding the office key: what admits, revokes, publishes and
/// lists places. `doing` says what, for a staff device's refusal.
pub(crate) fn open_office_key(config: &Config, doing: &str) -> Result<Vault, CliError> {
    let vault = open_office(config)?;
    office_key_only(&vault, doing)?;
    Ok(vault)
}

/// Refuses a staff device's vault what only the office key does.
pub(crate) fn office_key_only(vault: &Vault, doing: &str) -> Result<(), CliError> {
    if vault.settings().role != Role::Office {
        return Err(CliError::usage(format!(
            "only the office key {doing}; run this on the office machine"
        )));
    }
    Ok(())
}

fn pubkey(config: &Config, args: PubkeyArgs) -> Result<(), CliError> {
    let vault = open_office_key(config, "has the office's public keys")?;
    let text = OfficeKeys::from_keys(vault.keys()).to_string();
    match args.out {
        Some(path) => {
            std::fs::write(&path, &text)
                .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))?;
            output::print(&format!(
                "Wrote the office's public keys to {}\n",
                path.display()
            ))
        }
        None => output::print(&text),
    }
}

fn admit(config: &Config, args: AdmitArgs) -> Result<(), CliError> {
    // Checked before the passphrase is asked for: a bad line needs no vault.
    let line = cairn_protocol::DeviceLine::parse(&args.line)?;
    let team = match &args.team {
        Some(team) => {
            let team = cairn_model::validate_team(team)?;
            cairn_protocol::validate_team(&team)?;
            team
        }
        None => cairn_protocol::OFFICE_TEAM.to_owned(),
    };
    let lifetime = parse_duration(&args.expires)?;
    let server = args.server.trim_end_matches('/');
    if !server.starts_with("https://") {
        return Err(CliError::usage("the server URL must start with https://"));
    }
    let mut vault = open_office_key(config, "admits devices")?;
    let to = cairn_sync::AdmitTo {
        team: team.clone(),
        server: server.to_owned(),
        fingerprint: args.fingerprint.clone(),
        expires_at: unix_now() + lifetime,
    };
    let admission = cairn_sync::admit(&mut vault, &line, &to)?;
    let text = admission.to_text();
    let into = if args.staff {
        "as a staff device (it reads every team)".to_owned()
    } else {
        format!("into team {team}")
    };
    eprintln!(
        "Admitted device {} (code {}) {into}; run `cairn sync` here so the server learns it before the device joins.",
        line.keys.signing.short(),
        line.keys.short_code()
    );
    // The line first: the admission is made, and a QR code that cannot be written must not
    // hide it.
    output::print(&format!("{text}\n"))?;
    if let Some(path) = &args.qr {
        crate::qr::write_png(&text, path)?;
        eprintln!("Wrote the admission as a QR code to {}", path.display());
    }
    Ok(())
}

fn revoke(config: &Config, args: RevokeArgs) -> Result<(), CliError> {
    let mut vault = open_office_key(config, "revokes devices")?;
    let revoked = BlockingSync::new()?.revoke(&mut vault, &args.device, &config.sync_options())?;
    let mut text = format!(
        "Revoked device {} (its changes after number {} will be refused; team key epoch {} from now on)\n",
        revoked.device.short(),
        revoked.last_seq,
        revoked.epoch
    );
    if !revoked.rotated.is_empty() {
        let teams: Vec<String> = revoked
            .rotated
            .iter()
            .map(|(team, epoch)| format!("{team} epoch {epoch}"))
            .collect();
        text.push_str(&format!(
            "It was a staff device, which read every team: every team's key moved on ({})\n",
            teams.join(", ")
        ));
    }
    output::print(&text)
}

/// Rebuilds the office's vault from its server (see `cairn_sync::restore`).
fn restore(config: &Config, args: RestoreArgs) -> Result<(), CliError> {
    let server = args.server.trim_end_matches('/');
    if !server.starts_with("https://") {
        return Err(CliError::usage("the server URL must start with https://"));
    }
    let office = match &args.office_key {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| CliError::failure(format!("cannot read {}: {e}", path.display())))?
                .parse::<OfficeKeys>()
                .map_err(|e| {
                    CliError::usage(format!(
                        "{}: {e} (`cairn office pubkey` writes them)",
                        path.display()
                    ))
                })?,
        ),
        None => None,
    };
    let mut vault = open_office(config)?;
    if vault.settings().role == Role::Staff && office.is_none() {
        return Err(CliError::usage(
            "a staff device is restored with the office's public keys: give --office-key FILE (`cairn office pubkey` writes them)",
        ));
    }
    let bars = crate::sync_cmd::Bars::new();
    let restored = BlockingSync::new()?.restore(
        &mut vault,
        server,
        &args.fingerprint,
        office,
        &config.sync_options(),
        &bars,
    );
    bars.finish();
    let restored = restored.map_err(|e| {
        let mut e = CliError::from(e);
        // Cut off after it began: what came is kept, and running it again goes on.
        if vault.is_restoring().unwrap_or(false) {
            e.message = format!(
                "{}; what was restored is kept: run `cairn office restore` again to go on",
                e.message
            );
        }
        e
    })?;
    for warning in &restored.summary.warnings {
        output::eprint(&format!("cairn: warning: {warning}"));
    }
    if args.json {
        return output::json(&restored);
    }
    let s = &restored.summary;
    let mut text = format!(
        "Restored {} from {server}: {} roster statements, {} team keys, {} cases, {} of the office's own changes (the next is number {}), {} attachments fetched; the next case of the office is number {}.\n",
        match vault.settings().role {
            Role::Staff => "this staff device",
            _ => "the office",
        },
        restored.statements,
        restored.team_keys,
        restored.cases,
        restored.own_changes,
        restored.own_changes + 1,
        s.blobs_fetched,
        restored.next_reference
    );
    let failed = s.refused.len() as u64 + s.unreadable + s.blob_failures.len() as u64;
    if failed > 0 {
        text.push_str(&format!(
            "Not restored: {} change(s) refused, {} sealed under a key the roster does not grant the office, {} attachment(s) failed ({}); `cairn sync` tries the attachments again.\n",
            s.refused.len(),
            s.unreadable,
            s.blob_failures.len(),
            s.line()
        ));
    }
    text.push_str("Drafts, the import memory and this machine's configuration were only on the lost machine and are not restored.\n");
    output::print(&text)
}

/// `7d`, `12h`, `30m`, `45s` or plain seconds.
pub(crate) fn parse_duration(text: &str) -> Result<u64, CliError> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 's'),
    };
    let multiplier = match unit {
        'd' => 86_400,
        'h' => 3_600,
        'm' => 60,
        's' => 1,
        _ => 0,
    };
    match number.parse::<u64>() {
        Ok(n) if n > 0 && multiplier > 0 => Ok(n.saturating_mul(multiplier)),
        _ => Err(CliError::usage(format!(
            "invalid duration `{text}`: use for example 7d, 12h, 30m or 3600"
        ))),
    }
}
