//! `cairn demo`: the whole job in a throwaway folder. A real `cairn-server` on 127.0.0.1, an
//! office and two field tablets; the tablets record offline, edit one case at the same time,
//! and sync through a link that keeps dropping; then the merged case, its conflict and the
//! office's list are printed.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn_crypto::{KeyFileCost, SecretString};
use cairn_model::{Edit, Kind};
use cairn_protocol::{unix_now, DeviceLine, OfficeKeys};
use cairn_sync::{BlockingSync, Options};
use cairn_vault::{Home, NewVault, Role, Vault};

use crate::error::CliError;
use crate::output;

pub fn run() -> Result<(), CliError> {
    let dir = tempfile::tempdir()
        .map_err(|e| CliError::failure(format!("cannot create a temporary folder: {e}")))?;
    let client = BlockingSync::new()?;
    say(&format!(
        "Everything happens in {} and is wiped at the end.",
        dir.path().display()
    ))?;

    say("\n== The office makes its vault and starts the central server")?;
    let mut office = vault(dir.path(), "office", Role::Office, "office")?;
    let office_keys = OfficeKeys::from_keys(office.keys());
    let server = DemoServer::start(dir.path(), &office_keys)?;
    say(&format!(
        "cairn-server listens on https://{} (certificate {}…)",
        server.addr,
        &server.fingerprint[..16]
    ))?;
    let link = FlakyLink::start(&server.addr)?;
    say(&format!(
        "the tablets reach it through {}: a link that cuts every other connection mid-answer",
        link.addr
    ))?;

    say("\n== The office admits two tablets of team T03 and tells the server")?;
    cairn_sync::point_at_server(
        &mut office,
        &format!("https://{}", server.addr),
        &server.fingerprint,
        &office_keys,
    )?;
    let to = cairn_sync::AdmitTo {
        team: "T03".into(),
        server: format!("https://{}", link.addr),
        fingerprint: server.fingerprint.clone(),
        expires_at: unix_now() + 3600,
    };
    let mut tablets = Vec::new();
    let mut admissions = Vec::new();
    for name in ["tablet-1", "tablet-2"] {
        let tablet = vault(dir.path(), name, Role::Field, "T03")?;
        let line = DeviceLine::new(tablet.keys(), Some(name.into()))?;
        say(&format!("{name} shows its code {}", line.keys.short_code()))?;
        admissions.push(cairn_sync::admit(&mut office, &line, &to)?);
        tablets.push(tablet);
    }
    sync(&mut office, &client)?;
    for ((tablet, admission), name) in tablets
        .iter_mut()
        .zip(admissions)
        .zip(["tablet-1", "tablet-2"])
    {
        client.join(tablet, admission, &Options::default())?;
        say(&format!(
            "{name} joined as device {}",
            tablet.keys().id().short()
        ))?;
    }
    for tablet in tablets.iter_mut() {
        sync(tablet, &client)?;
    }

    say("\n== Offline, tablet-1 records two cases and tablet-2 one")?;
    let now = time::OffsetDateTime::now_utc;
    let set = Edit::set;
    let (one, two) = tablets.split_at_mut(1);
    let (t1, t2) = (&mut one[0], &mut two[0]);
    let case = t1.create_case(
        Kind::Killed,
        "KHR",
        &[
            set("incident.date", "2026-11-02"),
            set("incident.narrative", "Found under the collapsed stairwell."),
            set("found.lat", "31.3462"),
            set("found.lon", "34.3062"),
            set("person.sex", "male"),
        ],
        now(),
    )?;
    t1.create_case(Kind::Remains, "KHR", &[set("found.scene", "grave")], now())?;
    t2.create_case(
        Kind::Injured,
        "RFH",
        &[set("incident.cause", "targeted_strike")],
        now(),
    )?;
    say(&format!(
        "recorded {} and two more; the link comes up",
        case.reference
    ))?;
    for tablet in [&mut *t1, &mut *t2] {
        sync(tablet, &client)?;
    }

    say(&format!(
        "\n== Both tablets edit {} at the same time, offline",
        case.reference
    ))?;
    t1.edit_case(
        &case.reference,
        &[
            set("incident.cause", "targeted_strike"),
            set(
                "incident.narrative",
                "Found under the collapsed north stairwell.",
            ),
            Edit::Note {
                text: "Neighbours heard one strike at dawn.".into(),
            },
        ],
        now(),
    )?;
    t2.edit_case(
        &case.reference,
        &[
            set("incident.cause", "captivity"),
            set(
                "incident.narrative",
                "Found under the collapsed stairwell. Wrists bound.",
            ),
            Edit::Note {
                text: "Brother says he was detained on 30 October.".into(),
            },
        ],
        now(),
    )?;
    say("tablet-1: cause targeted_strike, adds \"north\"; tablet-2: cause captivity, adds \"Wrists bound.\"")?;

    say("\n== They sync through the dropping link, then the office syncs")?;
    sync(t2, &client)?;
    sync(t1, &client)?;
    sync(t2, &client)?;
    sync(&mut office, &client)?;

    say(&format!(
        "\n== {} as every device now holds it",
        case.reference
    ))?;
    let merged = t1.case(&case.reference)?.to_json()?;
    output::json(&merged)?;
    let same = [
        t2.case(&case.reference)?.to_json()?,
        office.case(&case.reference)?.to_json()?,
    ]
    .iter()
    .all(|other| *other == merged);
    say(&format!(
        "identical on tablet-1, tablet-2 and the office: {}",
        if same { "yes" } else { "NO" }
    ))?;
    say("\n== Its conflict, kept until someone decides")?;
    for conflict in office.case(&case.reference)?.conflicts() {
        for value in conflict.values {
            say(&format!(
                "{}: {}  (by {}, {})",
                conflict.key,
                value.value,
                &value.actor[..12.min(value.actor.len())],
                output::time_ms(value.time_ms)
            ))?;
        }
    }
    say(&format!(
        "resolve with: cairn case edit {} --set incident.cause=...",
        case.reference
    ))?;
    say("\n== The office's list")?;
    for c in office.list()? {
        say(&format!("{}  {:8}  {}", c.reference, c.kind, c.status))?;
    }
    drop(server);
    say("\nThe server stored only sealed changes it cannot read. Start for real with `cairn init`.")
}

fn vault(dir: &Path, name: &str, role: Role, team: &str) -> Result<Vault, CliError> {
    // Throwaway vaults: a low scrypt cost keeps the demo quick. Real vaults use the default.
    let pass = SecretString::from("demo passphrase".to_owned());
    let new = NewVault {
        team: team.into(),
        name: Some(name.into()),
        role,
    };
    Ok(Home::new(dir.join(name)).create(
        &pass,
        KeyFileCost::LogN(10),
        new,
        time::OffsetDateTime::now_utc(),
    )?)
}

/// Syncs until nothing is pending, as a person would rerun `cairn sync` on a bad link.
fn sync(vault: &mut Vault, client: &BlockingSync) -> Result<(), CliError> {
    let name = vault.settings().name.clone().unwrap_or_default();
    let options = Options {
        attempts: 3,
        base_delay: Duration::from_millis(50),
        ..Options::default()
    };
    for _ in 0..10 {
        match client.sync(vault, &options, &()) {
            Ok(summary) => {
                let retried = summary.round_trips.saturating_sub(1);
                return say(&format!(
                    "{name}: {}{}",
                    summary.line(),
                    if retried > 0 {
                        format!(" [{} request(s)]", summary.round_trips)
                    } else {
                        String::new()
                    }
                ));
            }
            Err((error, _)) => say(&format!(
                "{name}: {}; trying again",
                CliError::from(error).message
            ))?,
        }
    }
    Err(CliError::failure("the demo link never came back"))
}

fn say(line: &str) -> Result<(), CliError> {
    output::print(&format!("{line}\n"))
}

/// A `cairn-server` child process, killed when dropped.
struct DemoServer {
    child: Child,
    addr: String,
    fingerprint: String,
}

impl DemoServer {
    fn start(dir: &Path, office: &OfficeKeys) -> Result<DemoServer, CliError> {
        let binary = sibling("cairn-server")?;
        let key = dir.join("office.pub");
        let srv = dir.join("server");
        std::fs::write(&key, office.to_string())
            .map_err(|e| CliError::failure(format!("cannot write {}: {e}", key.display())))?;
        let path = |p: &Path| p.display().to_string();
        let init = Command::new(&binary)
            .args(["init", "--dir", &path(&srv), "--office-key", &path(&key)])
            .args(["--listen", "127.0.0.1:0"])
            .output()
            .map_err(|e| CliError::failure(format!("cannot run cairn-server: {e}")))?;
        if !init.status.success() {
            return Err(CliError::failure(format!(
                "cairn-server init failed: {}",
                String::from_utf8_lossy(&init.stderr).trim()
            )));
        }
        let read =
            |name: &str| std::fs::read_to_string(srv.join(name)).map(|s| s.trim().to_owned());
        let fingerprint = read("fingerprint")
            .map_err(|e| CliError::failure(format!("cairn-server wrote no fingerprint: {e}")))?;
        let log = std::fs::File::create(dir.join("server.log"))
            .map_err(|e| CliError::failure(format!("cannot create the server log: {e}")))?;
        let child = Command::new(&binary)
            .args(["run", "--dir", &path(&srv)])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| CliError::failure(format!("cannot start cairn-server: {e}")))?;
        let mut server = DemoServer {
            child,
            addr: String::new(),
            fingerprint,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.addr.is_empty() {
            match read("listening") {
                Ok(addr) if !addr.is_empty() => server.addr = addr,
                _ if Instant::now() > deadline => {
                    return Err(CliError::failure("cairn-server did not start within 30 s"))
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        Ok(server)
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary `name` beside this one (both come from `cargo build --release`).
fn sibling(name: &str) -> Result<PathBuf, CliError> {
    let me = std::env::current_exe()
        .map_err(|e| CliError::failure(format!("cannot find this program's folder: {e}")))?;
    let path = me.with_file_name(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(CliError::failure(format!(
            "the demo needs {} beside cairn; build both with `cargo build --release`",
            path.display()
        )))
    }
}

/// A TCP relay that cuts every other connection after 2,000 bytes of the server's answer.
struct FlakyLink {
    addr: String,
}

impl FlakyLink {
    fn start(upstream: &str) -> Result<FlakyLink, CliError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| CliError::failure(format!("cannot open the demo link: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| CliError::failure(e.to_string()))?
            .to_string();
        let upstream = upstream.to_owned();
        // Lives as long as the demo process.
        std::thread::spawn(move || {
            for (n, client) in listener.incoming().enumerate() {
                let (Ok(client), Ok(server)) = (client, TcpStream::connect(&upstream)) else {
                    continue;
                };
                let limit = if n % 2 == 1 { 2_000 } else { usize::MAX };
                let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                std::thread::spawn(move || relay(client, server, usize::MAX));
                std::thread::spawn(move || relay(s2, c2, limit));
            }
        });
        Ok(FlakyLink { addr })
    }
}

fn relay(mut from: TcpStream, mut to: TcpStream, limit: usize) {
    let mut passed = 0;
    let mut buf = [0u8; 8192];
    while let Ok(n) = from.read(&mut buf) {
        let allowed = n.min(limit - passed);
        if allowed == 0 || to.write_all(&buf[..allowed]).is_err() || allowed < n {
            break;
        }
        passed += allowed;
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
