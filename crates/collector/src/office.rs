//! `cairn office ...`: the office's public keys, invites and revocations.

use cairn_crypto::DeviceId;
use cairn_protocol::{unix_now, Invite, OfficeKeys, Revocation};
use cairn_sync::{apply_roster, Client};
use cairn_vault::{Role, Vault};

use crate::cli::{InviteArgs, OfficeCommand, PubkeyArgs, RevokeArgs};
use crate::config::Config;
use crate::error::CliError;
use crate::output;
use crate::vault_cmd::open;

pub fn run(config: &Config, cmd: OfficeCommand) -> Result<(), CliError> {
    match cmd {
        OfficeCommand::Pubkey(args) => pubkey(config, args),
        OfficeCommand::Invite(args) => invite(config, args),
        OfficeCommand::Revoke(args) => revoke(config, args),
    }
}

fn open_office(config: &Config) -> Result<Vault, CliError> {
    let vault = open(config)?;
    if vault.settings().role != Role::Office {
        return Err(CliError::usage(
            "this is a field vault; office commands need the vault made with `cairn init --office`",
        ));
    }
    Ok(vault)
}

fn pubkey(config: &Config, args: PubkeyArgs) -> Result<(), CliError> {
    let vault = open_office(config)?;
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

fn invite(config: &Config, args: InviteArgs) -> Result<(), CliError> {
    let team = cairn_model::validate_team(&args.team)?;
    cairn_protocol::validate_team(&team)?;
    let lifetime = parse_duration(&args.expires)?;
    let server = args.server.trim_end_matches('/');
    if !server.starts_with("https://") {
        return Err(CliError::usage("the server URL must start with https://"));
    }
    let mut vault = open_office(config)?;
    let invite = Invite::issue(
        vault.keys(),
        &team,
        server,
        &args.fingerprint,
        unix_now() + lifetime,
    )?;
    // The office syncs and revokes through the server it invites to.
    let mut state = vault.sync_state()?;
    if state.server.is_none() {
        state.server = Some(invite.body.server.clone());
        state.fingerprint = Some(invite.body.fingerprint.clone());
        state.office = Some(OfficeKeys::from_keys(vault.keys()).to_string());
        vault.set_sync_state(&state)?;
    }
    output::print(&format!("{}\n", invite.to_text()))
}

fn revoke(config: &Config, args: RevokeArgs) -> Result<(), CliError> {
    let mut vault = open_office(config)?;
    let state = vault.sync_state()?;
    let (Some(server), Some(fingerprint)) = (state.server, state.fingerprint) else {
        return Err(cairn_sync::SyncError::NotJoined.into());
    };
    let client = Client::new(&server, &fingerprint)?;
    let runtime = crate::sync_cmd::runtime()?;
    // Everything the device already delivered stays valid; later changes do not. Sync first,
    // so changes on the server that the office had not fetched yet are not thrown away (the
    // sync also brings the roster up to date).
    runtime
        .block_on(cairn_sync::sync(
            &mut vault,
            &cairn_sync::Options::default(),
            &(),
        ))
        .map_err(|(e, _)| e)?;
    let roster = cairn_sync::stored_roster(&vault.sync_state()?)?;
    let wanted = args.device.trim().to_ascii_lowercase();
    let matches: Vec<DeviceId> = roster
        .members()
        .map(|m| m.id)
        .filter(|id| !roster.is_office(id))
        .filter(|id| wanted.len() >= 8 && id.to_string().starts_with(&wanted))
        .collect();
    let device = match matches.as_slice() {
        [one] => *one,
        [] => {
            return Err(CliError::failure(format!(
                "no enrolled device `{}`; `cairn status` lists them",
                args.device
            )))
        }
        _ => {
            return Err(CliError::usage(format!(
                "`{}` matches several devices; give more digits",
                args.device
            )))
        }
    };
    let last_seq = vault.contiguous_seq(&device)?;
    let revocation = Revocation::issue(vault.keys(), device, last_seq, unix_now());
    runtime.block_on(client.revoke(vault.keys(), &revocation))?;
    let statements = runtime.block_on(client.roster(vault.keys()))?;
    let mut state = vault.sync_state()?;
    apply_roster(&mut vault, &mut state, &statements)?;
    output::print(&format!(
        "Revoked device {} (its changes after number {last_seq} will be refused)\n",
        device.short()
    ))
}

/// `7d`, `12h`, `30m`, `45s` or plain seconds.
fn parse_duration(text: &str) -> Result<u64, CliError> {
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
