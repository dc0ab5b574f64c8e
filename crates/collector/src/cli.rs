//! The command line, as clap parses it. Validation beyond shape happens in the commands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Cairn: secure, offline-first recording of casualty and human-remains cases.
///
/// Every case is kept encrypted on this device. Exit codes: 0 success, 1 failure,
/// 2 bad usage or bad input.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, propagate_version = true)]
pub struct Cli {
    /// The vault's directory [default: the XDG data directory, e.g. ~/.local/share/cairn].
    #[arg(long, global = true, env = "CAIRN_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// Configuration file [default: $XDG_CONFIG_HOME/cairn/config.toml].
    #[arg(long, global = true, env = "CAIRN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Read the passphrase from this file instead of prompting. It wins over the
    /// environment: then CAIRN_PASSPHRASE, then CAIRN_PASSPHRASE_FILE, then the configuration.
    #[arg(long, global = true, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,

    /// Log what cairn does to standard error (-v info, -vv debug). Never logs secrets.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new vault: keys locked with a passphrase, and an empty encrypted store.
    Init(InitArgs),
    /// Record, edit and read cases.
    #[command(subcommand)]
    Case(CaseCommand),
    /// List every field key, its label (in the configured language), its type and its allowed
    /// values.
    Fields(JsonFlag),
    /// Verify every sealed change in the vault and compare each case with its log.
    Check(CheckArgs),
    /// Run the whole job in a throwaway folder: a local server, an office and two tablets
    /// that record, edit one case at once and sync through a link that drops.
    Demo,
    /// Destroy this vault: the key file first, then the data. Cannot be undone.
    Wipe(WipeArgs),
    /// Print this device's public line (for the office to admit it) and its short code.
    Id(JsonFlag),
    /// The central office's work: its public keys, admissions, revocations.
    #[command(subcommand)]
    Office(OfficeCommand),
    /// Register this device with the server named in its office admission.
    Join(JoinArgs),
    /// Send this device's changes to the server and receive its team's.
    Sync(SyncArgs),
    /// Pending changes, last sync, server and roster.
    Status(JsonFlag),
    /// The counts report over a period: cases by kind, killed by cause, civilians and others,
    /// identified and unidentified, ending with the published sentence; optionally a chart.
    Report(ReportArgs),
    /// Write cases to a folder as CSV, GeoJSON or JSON, with a hash manifest and the custody
    /// log; named fields can be redacted.
    Export(ExportArgs),
    /// Unlock this vault once: a background agent keeps its keys in memory (never on disk)
    /// for this user only, so later commands need no passphrase until it has been idle --for.
    Unlock(UnlockArgs),
    /// End the unlock agent of this vault: later commands ask for the passphrase again.
    Lock,
    /// Print a shell completion script, e.g. `cairn completions bash > /etc/bash_completion.d/cairn`.
    Completions(CompletionsArgs),
    /// Print the manual page (roff), e.g. `cairn man | man -l -`; --out DIR writes a page for
    /// every command (cairn.1, cairn-case-new.1...).
    Man(ManArgs),
    /// The places this device knows: the office's list (which reaches every device with the
    /// roster at `cairn sync`), and the configuration's [places] as a local addition; each
    /// says where it comes from, and the office's wins on a code both name.
    Places(JsonFlag),
    /// The unlock agent itself, started by `cairn unlock`.
    #[command(hide = true)]
    AgentServe(AgentServeArgs),
}

/// `cairn unlock`.
#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// End the agent after this long without a command: 8h, 30m, 90s or seconds.
    #[arg(long = "for", default_value = "8h", value_name = "DURATION")]
    pub idle: String,
}

/// `cairn completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `cairn man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write one page per command into this existing folder instead of printing cairn(1).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// The hidden `cairn agent-serve`; the keys come on standard input.
#[derive(Debug, Args)]
pub struct AgentServeArgs {
    /// Where to listen.
    #[arg(long)]
    pub socket: PathBuf,
    /// Seconds without a request before ending.
    #[arg(long)]
    pub idle: u64,
    /// SHA-256 of the vault's key file, in hex: requests must name it.
    #[arg(long)]
    pub digest: String,
}

#[derive(Debug, Subcommand)]
pub enum OfficeCommand {
    /// Write the office's public keys, for `cairn-server init --office-key FILE`.
    Pubkey(PubkeyArgs),
    /// Admit a device into a team: prints the admission line to hand back to it.
    Admit(AdmitArgs),
    /// Revoke a lost or seized device: the server refuses it, and its team moves to a new key.
    Revoke(RevokeArgs),
    /// Rebuild a lost office from its server, into a new office vault holding the office's
    /// keys and nothing else (what `cairn office key recover` makes from the key's shares).
    ///
    /// The roster (checked against the office's own key), every team key, the places, every
    /// case with its verifications, reviews, links and notes, the office's own changes (its
    /// next one is numbered after them), published editions, receipts' numbering and every
    /// attachment come back; then `cairn sync` works as before. What was only ever on the lost
    /// machine cannot come back: drafts of the guided form, the memory of which import rows
    /// were taken (an import run again takes them again), the configuration file (timeouts,
    /// places of the form), an edition too large to travel (about 14,000 cases or more), and
    /// anything recorded after its last sync. If it is cut off, run it again: it goes on.
    #[command(verbatim_doc_comment)]
    Restore(RestoreArgs),
    /// Cases new or changed since the office last reviewed them, open conflicts flagged.
    Inbox(JsonFlag),
    /// Record the office's review of a case: received, has issues, or approved.
    Review(ReviewArgs),
    /// Pairs of cases that may be records of one person, or remains of a missing person,
    /// most likely first, each with its probability and why; --review decides them one by one.
    Match(MatchArgs),
    /// Serve the office's review pages to a browser on this machine: the case table, case
    /// pages (fields, history, conflicts to resolve, verification and review), the counts
    /// report with its chart, and a map of where cases were found. Runs until Ctrl-C.
    ///
    /// It unlocks the office vault once, prints a URL with a token made for this run, and
    /// answers only requests that carry that token (or the cookie the first visit sets) and
    /// name the address it listens on. Nothing is fetched from the internet. Other `cairn`
    /// commands (`sync` among them) keep working while it runs; every page reads the vault
    /// afresh. See docs/OFFICE_WEB.md.
    Serve(ServeArgs),
    /// The office's list of places (code, name, aliases, coordinates): it reaches every device
    /// with the roster, at the office's next `cairn sync` and then the device's.
    #[command(subcommand)]
    Places(OfficePlacesCommand),
    /// The office's key kept offline: split it into shares that any K of N rebuild, and
    /// rebuild it from them into a new vault.
    #[command(subcommand)]
    Key(OfficeKeyCommand),
}

/// `cairn office key`.
#[derive(Debug, Subcommand)]
pub enum OfficeKeyCommand {
    /// Write the office's key as N shares (a text file and a QR code image each), any K of
    /// which rebuild it; fewer reveal nothing about it. Give each share to another holder.
    Split(KeySplitArgs),
    /// Rebuild the office's key from K of its shares into a new office vault at --home (a
    /// directory with no vault): it asks a new passphrase, as `init` does.
    Recover(KeyRecoverArgs),
}

/// `cairn office key split`.
#[derive(Debug, Args)]
pub struct KeySplitArgs {
    /// How many shares to write (2 to 16).
    #[arg(long = "shares", value_name = "N", value_parser = clap::value_parser!(u8).range(2..=16))]
    pub shares: u8,
    /// How many shares rebuild the key (2 to N).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u8).range(2..=16))]
    pub threshold: u8,
    /// The folder to write them into (made, for this user only, if missing). Existing share
    /// files are never overwritten.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// `cairn office key recover`.
#[derive(Debug, Args)]
pub struct KeyRecoverArgs {
    /// The share files (text, as `split` wrote them or typed from paper; `-` reads one from
    /// standard input). The same share given twice counts once.
    #[arg(required = true, value_name = "SHARE_FILE")]
    pub shares: Vec<PathBuf>,
    /// A name to recognise this device by.
    #[arg(long)]
    pub name: Option<String>,
    /// scrypt cost of the new passphrase as log2(N), as for `cairn init`. A lower value
    /// WEAKENS the vault against passphrase guessing: only for tests and benchmarks.
    #[arg(long, value_name = "LOG_N", value_parser = clap::value_parser!(u8).range(1..=22))]
    pub kdf_cost: Option<u8>,
}

#[derive(Debug, Subcommand)]
pub enum OfficePlacesCommand {
    /// Add a place, or replace the place of that code: `add KHR --name "Khan Younis"`.
    Add(PlaceAddArgs),
    /// Remove a place: new cases can no longer be recorded there (cases recorded there keep
    /// their reference; correct a case with `cairn case edit REF --set place=CODE`).
    Remove(PlaceRemoveArgs),
}

#[derive(Debug, Args)]
pub struct PlaceAddArgs {
    /// The place's code, 2 to 6 letters or digits (the first part of a reference).
    pub code: String,
    /// Its name, as tables show it and people type it.
    #[arg(long)]
    pub name: String,
    /// Another name it goes by (another spelling or script); repeat for several.
    #[arg(long = "alias", value_name = "ALIAS")]
    pub aliases: Vec<String>,
    /// Latitude, decimal degrees (WGS 84); with --lon.
    #[arg(long, requires = "lon", allow_negative_numbers = true)]
    pub lat: Option<f64>,
    /// Longitude, decimal degrees (WGS 84); with --lat.
    #[arg(long, requires = "lat", allow_negative_numbers = true)]
    pub lon: Option<f64>,
}

#[derive(Debug, Args)]
pub struct PlaceRemoveArgs {
    /// The code of the place to remove.
    pub code: String,
}

/// `cairn office match`.
#[derive(Debug, Args)]
pub struct MatchArgs {
    /// Only pairs at least this likely, 0 to 1.
    #[arg(long = "min", default_value_t = 0.5, value_name = "P")]
    pub min: f64,
    /// Only pairs with this case (reference, the end of one that names it alone (`0017`), or id).
    #[arg(long = "case", value_name = "REF")]
    pub case: Option<String>,
    /// Decide each pair on this terminal: the two cases side by side, one key per decision.
    #[arg(long, conflicts_with = "json")]
    pub review: bool,
    /// Print JSON: a list of {a, b, relation, probability, why}.
    #[arg(long)]
    pub json: bool,
}

/// `cairn office serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address and port to listen on (port 0 picks a free one; the URL printed says which).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// Allow an address other than loopback. Anyone who can reach it and learns the token can
    /// read and change every case, over plain HTTP: use only on a network you trust.
    #[arg(long)]
    pub allow_non_loopback: bool,
    /// An MBTiles file of raster tiles (PNG, JPEG or WebP) drawn under the map, read on this
    /// machine; without it the map draws a bundled low-detail world outline. Vector tiles
    /// are refused.
    #[arg(long, value_name = "FILE")]
    pub basemap: Option<std::path::PathBuf>,
}

/// `cairn office review`.
#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// The case's reference (or id).
    pub reference: String,
    /// The review's outcome.
    #[arg(long, value_enum)]
    pub state: ReviewState,
    /// What the reviewer says.
    #[arg(long)]
    pub comment: Option<String>,
}

/// An office review's outcome.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum ReviewState {
    /// Seen and filed.
    Received,
    /// Something needs fixing or asking.
    HasIssues,
    /// Reviewed and approved.
    Approved,
}

/// `cairn case verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The case's reference (or id).
    pub reference: String,
    /// The evidentiary status: the office's, with a basis to confirm or reject. On a field
    /// device the verification is a proposal, kept as a note (only the office sets a status).
    #[arg(long, value_enum)]
    pub status: EvidentiaryStatus,
    /// On what grounds (required for confirmed and rejected).
    #[arg(long)]
    pub basis: Option<String>,
}

/// A case's evidentiary status.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum EvidentiaryStatus {
    /// Reported, not yet investigated.
    Alleged,
    /// Being investigated.
    UnderInvestigation,
    /// Confirmed on irrefutable grounds (office only).
    Confirmed,
    /// Found not to hold (office only).
    Rejected,
}

#[derive(Debug, Args)]
pub struct PubkeyArgs {
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AdmitArgs {
    /// The line `cairn id` printed on the device. Compare its short code with the device's
    /// holder (by voice if they are not in the room) before admitting.
    pub line: String,
    /// The team the device joins, e.g. T03.
    #[arg(long, required_unless_present = "staff", conflicts_with = "staff")]
    pub team: Option<String>,
    /// Admit a staff device (its vault made with `cairn init --staff`) into the office's own
    /// team: it receives every team's key, now and at every later admission or revocation.
    #[arg(long)]
    pub staff: bool,
    /// The server's URL, e.g. https://203.0.113.5:8443.
    #[arg(long)]
    pub server: String,
    /// The server certificate's SHA-256 fingerprint, as `cairn-server init` printed it.
    #[arg(long)]
    pub fingerprint: String,
    /// How long the device has to join with it: 7d, 12h, 30m or seconds.
    #[arg(long, default_value = "7d")]
    pub expires: String,
    /// Also write the admission as a QR code (PNG) to this file, for the device's camera.
    #[arg(long, value_name = "FILE.png")]
    pub qr: Option<PathBuf>,
}

/// `cairn office restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The server's URL, e.g. https://203.0.113.5:8443.
    #[arg(long)]
    pub server: String,
    /// The server certificate's SHA-256 fingerprint, as `cairn-server init` printed it.
    #[arg(long)]
    pub fingerprint: String,
    /// The office's public keys (`cairn office pubkey` writes them): a staff device's trust
    /// root, required to restore one; the office's own vault has them already.
    #[arg(long, value_name = "FILE")]
    pub office_key: Option<PathBuf>,
    /// Print what was restored as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The device: its name or its id (64 hex digits, or a unique start of at least 8), as
    /// `cairn status` lists them.
    pub device: String,
}

#[derive(Debug, Args)]
pub struct JoinArgs {
    /// The admission line the office gave you.
    pub admission: String,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Keep syncing every --interval seconds until interrupted.
    #[arg(long)]
    pub watch: bool,
    /// Seconds between syncs with --watch.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub interval: u64,
    /// Print each sync's summary as one JSON object (every refusal with its reason) instead
    /// of one line.
    #[arg(long)]
    pub json: bool,
    /// Also fetch the bytes of every attachment the cases here list. The office always does;
    /// a field device otherwise fetches only those asked for with `cairn case attachment get`.
    #[arg(long)]
    pub with_attachments: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Team code, e.g. T03 (letters and digits). A later admission may set it.
    #[arg(
        long,
        required_unless_present_any = ["office", "staff"],
        conflicts_with_all = ["office", "staff"]
    )]
    pub team: Option<String>,
    /// Make the central office's vault: it holds the office key, which admits and revokes
    /// devices, and reads every team's cases.
    #[arg(long, conflicts_with = "staff")]
    pub office: bool,
    /// Make a staff device's vault: once the office key admits it (`cairn office admit
    /// --staff`), it reads every team's cases and verifies, reviews, links and serves the
    /// office's page, signing as itself; it never admits or revokes.
    #[arg(long)]
    pub staff: bool,
    /// A name to recognise this device by.
    #[arg(long)]
    pub name: Option<String>,
    /// scrypt cost of the passphrase as log2(N). The default is calibrated to about one second
    /// on this device. A lower value WEAKENS the vault against passphrase guessing: only for
    /// tests and benchmarks.
    #[arg(long, value_name = "LOG_N", value_parser = clap::value_parser!(u8).range(1..=22))]
    pub kdf_cost: Option<u8>,
    /// Make the vault around the keys of this key file, a copy kept of a lost vault's
    /// `keys.age`, opened with the passphrase (which the new vault keeps): the office's or a
    /// staff device's, whose cases `cairn office restore` then brings back from the server.
    #[arg(long, value_name = "KEY_FILE", conflicts_with = "team")]
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum CaseCommand {
    /// Record a new case and print its reference.
    ///
    /// On a terminal with no --set, --unset or --note, a guided form asks the fields section by
    /// section (Enter skips one), shows a summary and saves only when told to. Every answer is
    /// kept at once in an encrypted draft (`cairn case drafts`), so a killed form loses at most
    /// the answer being typed; Ctrl-C or Esc asks whether to go back, keep the draft and quit,
    /// or discard it. Several cases can follow with one unlock.
    New(NewArgs),
    /// The guided form's drafts on this device (never synced): list them, resume one in the
    /// form, or discard one.
    Drafts(DraftsArgs),
    /// Change fields of a case or add a note.
    ///
    /// On a terminal with no --set, --unset or --note, the guided form, each field showing
    /// the case's current value.
    Edit(EditArgs),
    /// Show one case.
    Show(CaseRef),
    /// List cases.
    List(ListArgs),
    /// Every change to a case: when, by which device, which fields.
    History(CaseRef),
    /// Give a case an evidentiary status and record its basis (the office's; on a field device,
    /// a proposal kept as a note).
    Verify(VerifyArgs),
    /// Fields where concurrent edits left more than one value.
    Conflicts(CaseRef),
    /// Record a custody event (who handed what to whom, where, why).
    Custody(CustodyArgs),
    /// Record a source of information about the case (kept as sensitive as anything).
    Source(SourceArgs),
    /// Create cases from a CSV or JSON Lines file, one case per row, all or none.
    Import(ImportArgs),
    /// Attach files (photos, audio, documents): hashed at capture, stored encrypted in
    /// chunks, listed in the case, sent at the next sync.
    Attach(AttachArgs),
    /// List a case's attachments and whether their bytes are here and sent.
    Attachments(CaseRef),
    /// Get an attachment back, or drop one from the outbox.
    #[command(subcommand)]
    Attachment(AttachmentCommand),
    /// Record the office's decision on two cases: one person (same_person), remains of a
    /// missing person (identifies), or two people never to be proposed again (distinct).
    /// Recorded in both cases; a later decision on the same pair supersedes an earlier one.
    ///
    /// `--from FILE.csv` records decisions taken elsewhere (columns a,b,relation,basis), all
    /// or none. See `cairn office match` for candidates.
    Link(LinkArgs),
    /// Withdraw a note (one written on the wrong case, say): the case then shows it
    /// withdrawn, by whom and why, without its text. Only its writer or the office withdraws
    /// it; the text stays in the case's signed history.
    WithdrawNote(WithdrawNoteArgs),
    /// The office's link decisions on a case, the one in force on each pair first.
    Links(CaseRef),
}

/// `cairn case withdraw-note`.
#[derive(Debug, Args)]
pub struct WithdrawNoteArgs {
    /// The case's reference, the end of one that names it alone (`0017`), or id.
    pub reference: String,
    /// The note's number, counted from 1 as `cairn case show` lists the notes.
    pub note: usize,
    /// Why it is withdrawn (recorded with the withdrawal).
    #[arg(long)]
    pub reason: String,
}

/// `cairn case link`.
#[derive(Debug, Args)]
pub struct LinkArgs {
    /// One case's reference, the end of one that names it alone (`0017`), or id.
    #[arg(required_unless_present = "from", conflicts_with = "from")]
    pub a: Option<String>,
    /// The other case's reference, the end of one that names it alone (`0017`), or id (for identifies, either order).
    #[arg(required_unless_present = "from")]
    pub b: Option<String>,
    /// The decision.
    #[arg(
        long = "as",
        value_enum,
        required_unless_present = "from",
        value_name = "RELATION"
    )]
    pub relation: Option<Relation>,
    /// On what grounds (recorded with the decision).
    #[arg(long, required_unless_present = "from", conflicts_with = "from")]
    pub basis: Option<String>,
    /// Record every decision of this CSV file (header a,b,relation,basis), all or none.
    #[arg(long, value_name = "FILE.csv")]
    pub from: Option<PathBuf>,
}

/// The office's decision on two cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum Relation {
    /// Two records of one person.
    SamePerson,
    /// Remains identified as a missing person.
    Identifies,
    /// Two different people: never proposed again.
    Distinct,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// The case's reference, the end of one that names it alone (`0017`), or id.
    pub reference: String,
    /// The files to attach.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// A caption for every file attached (e.g. what is in frame).
    #[arg(long)]
    pub caption: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AttachmentCommand {
    /// Decrypt an attachment to a file, checking its SHA-256 against the one taken at
    /// capture; nothing is written at PATH unless it checks. Asks for it when its bytes are
    /// not here yet (the next sync fetches them).
    Get {
        /// The case's reference, the end of one that names it alone (`0017`), or id.
        reference: String,
        /// The attachment's SHA-256 or blob id, as `cairn case attachments --json` prints
        /// them (8 hex digits or more of either).
        #[arg(value_name = "SHA256_OR_BLOB")]
        hash: String,
        /// Where to write it (must not exist).
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
    },
    /// Take an attachment made here out of the outbox, so it is never sent; the case records
    /// which and why.
    Drop {
        /// The case's reference, the end of one that names it alone (`0017`), or id.
        reference: String,
        /// The attachment's SHA-256 or blob id (8 hex digits or more of either).
        #[arg(value_name = "SHA256_OR_BLOB")]
        hash: String,
        /// Why (recorded in a note of the case).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// CSV with a header row (.csv) or JSON Lines (.jsonl, .ndjson), one case per row: the
    /// keys of `cairn fields` as columns, with place and kind (required), status and
    /// status_basis.
    pub file: PathBuf,
    /// A TOML file renaming columns and values of another tool's export ([columns],
    /// [values.KEY], [ignore], [defaults]).
    #[arg(long, value_name = "MAP.toml")]
    pub map: Option<PathBuf>,
    /// The team the cases belong to (office only; default: this vault's own team). Its
    /// members then read and edit them, as cases their own devices recorded.
    #[arg(long, value_name = "TEAM")]
    pub team: Option<String>,
    /// Print what was created as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// What to write; several may be given, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', required = true)]
    pub format: Vec<ExportFormat>,
    /// The folder to write into (created if missing; must be empty unless --force).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Remove these everywhere in the export: field keys (person.name), groups (person) or
    /// lists (sources, notes, custody, verifications, reviews, links). Comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "KEYS")]
    pub redact: Vec<String>,
    /// Only cases with these statuses, comma-separated [default: every case].
    #[arg(long, value_enum, value_delimiter = ',', value_name = "STATUSES")]
    pub status: Vec<EvidentiaryStatus>,
    /// Only the cases a published edition counted, each as it was when counted (its id, a
    /// prefix, its hash or `latest`); the signed edition is written beside them.
    #[arg(long, value_name = "EDITION", conflicts_with = "status")]
    pub edition: Option<String>,
    /// Add the HXL hashtag row under the CSV header.
    #[arg(long)]
    pub hxl: bool,
    /// Also write each exported case's attachments (photos, documents) that are on this
    /// device, decrypted and checked against their SHA-256, under attachments/REFERENCE/,
    /// each listed in the manifest. `cairn sync --with-attachments` fetches the others.
    #[arg(long)]
    pub with_attachments: bool,
    /// Write into a folder that is not empty, replacing files of the same names.
    #[arg(long)]
    pub force: bool,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// cases.csv: one row per case, stable columns.
    Csv,
    /// cases.geojson: a point per case with coordinates.
    Geojson,
    /// cases.jsonl: each case in full with its history, one JSON object per line.
    Json,
}

/// What a case is about.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CaseKind {
    /// A person killed.
    Killed,
    /// A person injured.
    Injured,
    /// A person missing.
    Missing,
    /// Human remains found.
    Remains,
    /// A living person held: in captivity, detained, a hostage.
    Detained,
}

/// Whether a source consented to being recorded.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Consent {
    /// Consented.
    Yes,
    /// Did not consent.
    No,
    /// Not known.
    Unknown,
}

/// The word clap shows for a choice, which is the model's word for it.
pub fn choice_name(value: &impl clap::ValueEnum) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// Go on with a draft of the guided form (its id from `cairn case drafts`).
    #[arg(long, value_name = "ID", conflicts_with_all = ["kind", "place", "set", "unset", "note"])]
    pub resume: Option<String>,
    /// What the case is about (required unless the guided form asks it).
    #[arg(long, value_enum)]
    pub kind: Option<CaseKind>,
    /// Place code for the reference, e.g. KHR, or a place's name from the configuration
    /// (`cairn places`) (required unless the guided form asks it).
    #[arg(long)]
    pub place: Option<String>,
    #[command(flatten)]
    pub edits: EditFlags,
}

/// `cairn case drafts`: a list, or what to do with one draft.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DraftsArgs {
    #[command(subcommand)]
    pub action: Option<DraftsCommand>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum DraftsCommand {
    /// Open the guided form with the draft's answers filled (on a terminal).
    Resume(DraftId),
    /// Throw a draft away; no case changes.
    Discard(DraftId),
}

#[derive(Debug, Args)]
pub struct DraftId {
    /// The draft's id, or its start (4 hex digits or more), as `cairn case drafts` lists it.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct EditArgs {
    /// The case's reference (e.g. KHR-T03-7KQ2-0017) or id.
    pub reference: String,
    #[command(flatten)]
    pub edits: EditFlags,
}

#[derive(Debug, Args)]
pub struct EditFlags {
    /// Set a field: key=value (see `cairn fields`). key=@FILE reads the value from a file,
    /// key=@- from standard input, key=@@text is the text `@text`. Times take now, a date,
    /// a local time YYYY-MM-DD HH:MM or RFC 3339. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Clear a field (a wrong choice, a mistyped number). Repeatable.
    #[arg(long = "unset", value_name = "KEY")]
    pub unset: Vec<String>,
    /// Append a note. Repeatable.
    #[arg(long = "note", value_name = "TEXT")]
    pub note: Vec<String>,
}

impl EditFlags {
    /// No --set, --unset or --note: on a terminal, what opens the guided form.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.unset.is_empty() && self.note.is_empty()
    }
}

/// Clap's own error for `cairn case new` without --kind or --place where the form does not
/// ask them: there they are required, as they were before the form.
pub fn missing_new_args() -> clap::Error {
    let command = <Cli as clap::CommandFactory>::command().mut_subcommand("case", |case| {
        case.mut_subcommand("new", |new| {
            new.mut_arg("kind", |a| a.required(true))
                .mut_arg("place", |a| a.required(true))
        })
    });
    match command.try_get_matches_from(std::env::args_os()) {
        Err(e) => e,
        Ok(_) => clap::Error::new(clap::error::ErrorKind::MissingRequiredArgument),
    }
}

#[derive(Debug, Args)]
pub struct CaseRef {
    /// The case's reference, the end of one that names it alone (`0017`), or id.
    pub reference: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only cases of this kind.
    #[arg(long, value_enum)]
    pub kind: Option<CaseKind>,
    /// Only cases with this evidentiary status.
    #[arg(long, value_enum)]
    pub status: Option<EvidentiaryStatus>,
    /// Only cases with this incident.cause (`cairn fields` lists the causes).
    #[arg(long)]
    pub cause: Option<String>,
    /// Only cases whose incident starts on or after this day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// Only cases whose incident starts on or before this day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,
    /// Only cases of this place: its code or its name from the configuration.
    #[arg(long)]
    pub place: Option<String>,
    /// Only cases of this team (from their reference).
    #[arg(long)]
    pub team: Option<String>,
    /// Only cases with a field that concurrent edits left with several values.
    #[arg(long)]
    pub conflicts: bool,
    /// Only cases of a person so named: each word found in `person.name`, in any script, with
    /// or without diacritics, in any order, as the start of a word (3 letters or more) or a
    /// spelling variant (`--name "aram hovhannisyan"` finds Հովհաննիսյան Արամ).
    #[arg(long, value_name = "TEXT")]
    pub name: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CustodyArgs {
    /// The case's reference, the end of one that names it alone (`0017`), or id.
    pub reference: String,
    /// Who handed over.
    #[arg(long)]
    pub from: Option<String>,
    /// Who received.
    #[arg(long)]
    pub to: String,
    /// Where.
    #[arg(long)]
    pub place: Option<String>,
    /// Why (transport, examination, burial...).
    #[arg(long)]
    pub purpose: Option<String>,
    /// Seal number, if sealed.
    #[arg(long)]
    pub seal: Option<String>,
    /// When the hand-over happened, if not now: a date, a local time YYYY-MM-DD HH:MM or RFC 3339.
    #[arg(long, value_name = "WHEN")]
    pub at: Option<String>,
}

#[derive(Debug, Args)]
pub struct SourceArgs {
    /// The case's reference, the end of one that names it alone (`0017`), or id.
    pub reference: String,
    /// Kind of source (witness, family, document, hospital...).
    #[arg(long = "type")]
    pub kind: String,
    /// How to reach the source.
    #[arg(long)]
    pub contact: Option<String>,
    /// Whether the source consented to being recorded.
    #[arg(long, value_enum)]
    pub consent: Consent,
    /// When the source gave the information, if not now: a date, a local time or RFC 3339.
    #[arg(long, value_name = "WHEN")]
    pub at: Option<String>,
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Then fetch from the server every signed change of each case loaded from an office
    /// checkpoint, verify them, and check they make the document the office sent.
    #[arg(long)]
    pub deep: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct WipeArgs {
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
}

/// `cairn report`.
#[derive(Debug, Args)]
#[command(subcommand_negates_reqs = true, args_conflicts_with_subcommands = true)]
pub struct ReportArgs {
    /// Publish an edition, list or show editions, check a published one.
    #[command(subcommand)]
    pub command: Option<ReportCommand>,
    #[command(flatten)]
    pub rules: ReportRules,
    /// Print what changed since this published edition (its id, a prefix of it, its hash
    /// or `latest`) instead of the figures: cases newly counted, reclassified, no longer
    /// counted, persons merged, and the update sentence.
    #[arg(long, value_name = "EDITION")]
    pub since: Option<String>,
    #[command(flatten)]
    pub output: ReportOutput,
}

/// What a report counts.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportRules {
    /// The first day counted, YYYY-MM-DD (cases whose incident date, or the start of its range,
    /// is on or after it).
    #[arg(long, value_name = "DATE", required = true)]
    pub from: Option<String>,
    /// The last day counted, YYYY-MM-DD (inclusive).
    #[arg(long, value_name = "DATE", required = true)]
    pub to: Option<String>,
    /// Count alleged and under-investigation cases too, not only confirmed ones.
    #[arg(long, conflicts_with = "count")]
    pub include_alleged: bool,
    /// Which cases count: `confirmed` (the default) or `alleged` (also alleged and
    /// under-investigation cases: the same as --include-alleged).
    #[arg(long, value_enum, value_name = "WHICH")]
    pub count: Option<ReportCount>,
    /// Add a table of the figures by incident month, by cause or by place code.
    #[arg(long, value_enum, value_name = "GROUP")]
    pub by: Option<ReportBy>,
}

/// How a report is printed.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportOutput {
    /// How to print the report.
    #[arg(long, value_enum, default_value = "text", conflicts_with = "json")]
    pub format: ReportFormat,
    /// Print JSON (the same as --format json).
    #[arg(long)]
    pub json: bool,
    /// Also draw killed by cause, by month, into this file: .svg or .png.
    #[arg(long, value_name = "FILE")]
    pub chart: Option<PathBuf>,
    /// Write the report to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Which cases a report counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportCount {
    /// Confirmed cases only.
    Confirmed,
    /// Confirmed, alleged and under-investigation cases.
    Alleged,
}

/// `cairn report` subcommands: published editions.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Freeze the report as an edition (office only): its figures, sentence and rules, and
    /// every case counted at the version counted, signed by the office and kept. Prints the
    /// edition as `report show` will always print it, with its id and short hash.
    Publish(PublishArgs),
    /// The editions published, oldest first.
    Editions(JsonFlag),
    /// Print a published edition exactly as it was published, however the cases changed
    /// since; with --since, what changed between two editions.
    Show(ShowEditionArgs),
    /// Check a published edition's file (from `report show EDITION --format signed`): the
    /// office's signature, and that its figures follow from its cases.
    Verify(VerifyEditionArgs),
}

/// `cairn report publish`.
#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    #[command(flatten)]
    pub rules: ReportRules,
    /// The edition's title, e.g. "Interim report, updated".
    #[arg(long, value_name = "TEXT")]
    pub title: String,
    #[command(flatten)]
    pub output: ReportOutput,
}

/// `cairn report show`.
#[derive(Debug, clap::Args)]
pub struct ShowEditionArgs {
    /// The edition: its id, a prefix of it, its hash (or a prefix), or `latest`.
    pub edition: String,
    /// Print what changed since this earlier edition instead.
    #[arg(long, value_name = "EDITION")]
    pub since: Option<String>,
    /// How to print: a report format, or `signed` for the signed edition itself (the file
    /// `report verify` checks).
    #[arg(long, value_enum, default_value = "text", conflicts_with = "json")]
    pub format: EditionFormat,
    /// Print JSON (the same as --format json).
    #[arg(long)]
    pub json: bool,
    /// Also draw killed by cause, by month, into this file: .svg or .png.
    #[arg(long, value_name = "FILE", conflicts_with = "since")]
    pub chart: Option<PathBuf>,
    /// Write to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// How `cairn report show` prints an edition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EditionFormat {
    /// Plain text, as `report --format text`.
    Text,
    /// Markdown tables.
    Markdown,
    /// One JSON object.
    Json,
    /// One standalone HTML page with the chart inline.
    Html,
    /// The signed edition (JSON): what `report verify` checks.
    Signed,
}

/// `cairn report verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyEditionArgs {
    /// The signed edition file.
    pub file: PathBuf,
    /// The office's public keys (from `cairn office pubkey`); without it, the office this
    /// vault knows.
    #[arg(long, value_name = "FILE")]
    pub office_key: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What `cairn report --by` groups the figures by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportBy {
    /// The month of the incident.
    Month,
    /// The cause of death or injury.
    Cause,
    /// The case's place code.
    Place,
}

/// How `cairn report` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Plain text for the terminal, ending with the published sentence.
    Text,
    /// Markdown tables.
    Markdown,
    /// One JSON object.
    Json,
    /// One standalone HTML page with the chart inline.
    Html,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;
    use std::str::FromStr;

    /// The flags' choices are the model's, word for word.
    #[test]
    fn choices_are_the_models() {
        let kinds: Vec<String> = CaseKind::value_variants().iter().map(choice_name).collect();
        let model: Vec<String> = cairn_model::Kind::ALL
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(kinds, model);
        let statuses: Vec<String> = EvidentiaryStatus::value_variants()
            .iter()
            .map(choice_name)
            .collect();
        assert_eq!(statuses, cairn_model::STATUSES);
        for consent in Consent::value_variants() {
            let edit = cairn_model::Edit::Source {
                kind: "witness".into(),
                contact: None,
                consent: choice_name(consent),
                at: None,
            };
            assert!(edit.check().is_ok(), "{consent:?}");
        }
        for status in cairn_model::STATUSES {
            assert!(cairn_model::Status::from_str(status).is_ok());
        }
    }

    #[test]
    fn the_definition_is_consistent() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }
}
