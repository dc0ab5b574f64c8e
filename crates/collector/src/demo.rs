//! `cairn demo`: a guided run in a throwaway vault, so a newcomer sees the whole job at once.

use cairn_crypto::{KeyFileCost, SecretString};
use cairn_model::{Edit, Kind};
use cairn_vault::{Home, NewVault, Role};

use crate::error::CliError;
use crate::output;

pub fn run() -> Result<(), CliError> {
    let dir = tempfile::tempdir()
        .map_err(|e| CliError::failure(format!("cannot create a temporary folder: {e}")))?;
    let home = Home::new(dir.path().join("field-device"));
    let now = time::OffsetDateTime::now_utc;
    // A throwaway vault: a low scrypt cost keeps the demo quick. Real vaults use the default.
    let pass = SecretString::from("demo passphrase".to_owned());
    let new = NewVault {
        team: "T03".into(),
        name: Some("demo tablet".into()),
        role: Role::Field,
    };
    let mut vault = home.create(&pass, KeyFileCost::LogN(10), new, now())?;
    say(&format!(
        "== A field vault for team T03 in {} (device tag {})",
        home.dir().display(),
        vault.keys().id().tag()
    ))?;

    let set = |k: &str, v: &str| Edit::set(k, v);
    let first = vault.create_case(
        Kind::Killed,
        "KHR",
        &[
            set("incident.cause", "targeted_strike"),
            set("incident.date", "2026-11-02"),
            set("found.lat", "31.3462"),
            set("found.lon", "34.3062"),
            set("found.scene", "rubble"),
            set("person.sex", "male"),
            set("person.age_group", "adult"),
            Edit::Note {
                text: "Recovered from the rubble with the civil defence.".into(),
            },
        ],
        now(),
    )?;
    let second = vault.create_case(
        Kind::Remains,
        "KHR",
        &[
            set("found.scene", "grave"),
            set("remains.condition", "skeletonised"),
        ],
        now(),
    )?;
    vault.create_case(
        Kind::Missing,
        "RFH",
        &[set("incident.cause", "captivity")],
        now(),
    )?;
    say(&format!(
        "== Recorded {}, {} and a third case, offline",
        first.reference, second.reference
    ))?;

    vault.edit_case(
        &first.reference,
        &[
            set("incident.narrative", "Found under the collapsed stairwell."),
            set("status", "under_investigation"),
            Edit::Note {
                text: "Brother identified the clothing.".into(),
            },
        ],
        now(),
    )?;
    say(&format!(
        "== {} as `cairn case show --json` prints it:",
        first.reference
    ))?;
    output::json(&vault.case(&first.reference)?.to_json()?)?;

    say("== `cairn case list`:")?;
    for c in vault.list()? {
        say(&format!("{}  {:8}  {}", c.reference, c.kind, c.status))?;
    }
    say(&format!("== `cairn case history {}`:", first.reference))?;
    for h in vault.case(&first.reference)?.history() {
        say(&format!(
            "{}  {}  {}",
            output::time_ms(h.time_ms),
            &h.actor[..12.min(h.actor.len())],
            h.fields.join(", ")
        ))?;
    }
    let report = vault.check()?;
    say(&format!(
        "== `cairn check`: {} sealed changes verified; on disk there is only ciphertext.",
        report.changes
    ))?;
    drop(vault);
    home.wipe()?;
    say("== Wiped the demo vault (key file first). Start for real with `cairn init --team T03`.")
}

fn say(line: &str) -> Result<(), CliError> {
    output::print(&format!("{line}\n"))
}
