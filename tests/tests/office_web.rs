//! `cairn office serve` with real processes: plain HTTP requests for what it must refuse (no
//! token, a wrong one, a wrong Host, a form without its CSRF token or from another origin, an
//! oversized body) and for how it escapes hostile case content; then Debian's chromium,
//! driven over WebDriver, does the office's work: filter the table, resolve a conflict,
//! verify a case and see the report's counts change; and links two records of one person
//! from the candidates and pair pages. Photos (their headers), field edits, the base map and
//! pages of the table over plain HTTP; and the office at 100,000 cases in chromium. Screenshots
//! of the table, a case page, the report, the map, the candidates, a pair, and the pages at
//! 100,000 cases go to `target/test-artefacts/` (each path printed).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cairn_e2e::{Device, Server};
use fantoccini::{Client, ClientBuilder, Locator};

/// A running `cairn office serve`, ended when dropped.
struct Serving {
    child: Child,
    /// `127.0.0.1:PORT`.
    addr: String,
    token: String,
}

impl Serving {
    fn start(office: &Device) -> Serving {
        Serving::start_with(office, &[])
    }

    /// `cairn office serve` with `extra` arguments.
    fn start_with(office: &Device, extra: &[&str]) -> Serving {
        let mut args = vec!["office", "serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut child = office
            .command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The URL is its first line of output; an early exit ends the read with nothing.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some((addr, token)) = line
            .trim()
            .strip_prefix("http://")
            .and_then(|rest| rest.split_once("/?token="))
        else {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .ok();
            panic!("no URL from cairn office serve: {line:?} {stderr}");
        };
        Serving {
            addr: addr.to_owned(),
            token: token.to_owned(),
            child,
        }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sends `head` (the request line and headers, without Host unless `host` is given) and
    /// `body`; returns the status and the whole answer.
    fn send(&self, head: &str, host: Option<&str>, body: &str) -> (u16, String) {
        let (status, answer) = self.send_bytes(head, host, body);
        (status, String::from_utf8_lossy(&answer).into_owned())
    }

    /// As [`Serving::send`], the answer as bytes.
    fn send_bytes(&self, head: &str, host: Option<&str>, body: &str) -> (u16, Vec<u8>) {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let host = host.unwrap_or(&self.addr);
        let request = format!("{head}\r\nHost: {host}\r\nConnection: close\r\n\r\n{body}");
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        let status = String::from_utf8_lossy(&answer[..answer.len().min(16)])
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {answer:?}"));
        (status, answer)
    }

    fn cookie(&self) -> String {
        format!("Cookie: cairn_office={}", self.token)
    }

    /// GET `path` with the session cookie.
    fn get(&self, path: &str) -> (u16, String) {
        self.send(
            &format!("GET {path} HTTP/1.1\r\n{}", self.cookie()),
            None,
            "",
        )
    }

    /// POST a form to `path` with the session cookie and `extra` headers.
    fn post(&self, path: &str, extra: &str, form: &str) -> (u16, String) {
        let head = format!(
            "POST {path} HTTP/1.1\r\n{}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}{extra}",
            self.cookie(),
            form.len()
        );
        self.send(&head, None, form)
    }

    /// SIGTERM, as a service manager stops it; returns the exit code.
    fn stop(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        self.child.wait().unwrap().code()
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The CSRF token in a page's forms.
fn csrf(page: &str) -> String {
    let (_, rest) = page
        .split_once("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no CSRF token in {page}"));
    rest.split('"').next().unwrap().to_owned()
}

fn status_of(office: &Device, reference: &str) -> String {
    office.json(&["case", "show", reference])["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

const HOSTILE: &str = "<script>alert('x')</script>";
const HOSTILE_NOTE: &str = "\"><img src=x onerror=alert(1)>";

/// How many sockets process `pid` has open (its listener included).
fn open_sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|target| target.to_string_lossy().starts_with("socket:"))
                .count()
        })
        .unwrap_or(0)
}

/// Someone on this machine holding many connections, idle or with half a request head
/// sent, neither keeps the page from answering a real request at once nor makes the server
/// hold more than its cap; every one of them is closed within seconds.
#[test]
fn held_connections_neither_stall_the_page_nor_stay_open() {
    const HELD: usize = 300;
    // The cap on connections and the head timeout of `cairn office serve`, with slack.
    const CAP: usize = 64;
    const CLOSED_WITHIN: Duration = Duration::from_secs(12);
    let office = Device::office();
    let serving = Serving::start(&office);
    let mut held = Vec::with_capacity(HELD);
    for i in 0..HELD {
        let mut stream = TcpStream::connect(&serving.addr).unwrap();
        if i % 2 == 1 {
            stream.write_all(b"GET / HTTP/1.1\r\nHost: ").unwrap();
        }
        held.push(stream);
    }
    let asked = std::time::Instant::now();
    let (status, page) = serving.get("/");
    assert_eq!(status, 200, "{page}");
    let waited = asked.elapsed();
    // Sooner than any held connection times out (5 s): none had to.
    assert!(
        waited < Duration::from_secs(4),
        "the page took {waited:?} to answer"
    );
    let sockets = open_sockets(serving.child.id());
    assert!(
        sockets <= CAP + 1,
        "the server holds {sockets} sockets for {HELD} connections"
    );
    // Each held connection is closed by the server: what reads it sees its end, not a
    // read timeout.
    let deadline = std::time::Instant::now() + CLOSED_WITHIN;
    for (i, stream) in held.iter_mut().enumerate() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(10))))
            .unwrap();
        let mut buf = [0u8; 256];
        let closed = loop {
            match stream.read(&mut buf) {
                Ok(0) => break true,
                // A half-sent head may get an error answer before the end.
                Ok(_) => continue,
                Err(e) => {
                    break !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    )
                }
            }
        };
        assert!(
            closed,
            "held connection {i} still open after {CLOSED_WITHIN:?}"
        );
    }
    // And the page still answers.
    assert_eq!(serving.get("/").0, 200);
}

#[test]
fn what_the_server_refuses_and_how_it_escapes() {
    // Only the office's vault is served, and only on loopback unless asked.
    let field = Device::init("T03");
    let run = field.run(&["office", "serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("field vault"), "{}", run.stderr);
    let office = Device::office();
    let run = office.run(&["office", "serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("--allow-non-loopback"),
        "{}",
        run.stderr
    );

    let reference = office.new_case(&[
        "--kind",
        "killed",
        "--place",
        "KHR",
        "--set",
        &format!("incident.narrative={HOSTILE}"),
        "--note",
        HOSTILE_NOTE,
    ]);
    let serving = Serving::start(&office);
    let case_path = format!("/case/{reference}");

    // No token, a wrong token, a wrong cookie: refused, and nothing of a case shown.
    for (head, code) in [
        (format!("GET {case_path} HTTP/1.1"), 401),
        (format!("GET /?token={} HTTP/1.1", "0".repeat(64)), 403),
        (
            format!("GET {case_path} HTTP/1.1\r\nCookie: cairn_office=x"),
            403,
        ),
        ("GET /style.css HTTP/1.1".to_owned(), 401),
    ] {
        let (status, answer) = serving.send(&head, None, "");
        assert_eq!(status, code, "{head}: {answer}");
        assert!(!answer.contains(&reference), "{answer}");
    }
    // The token once: it becomes a strict, script-proof cookie, and leaves the address.
    let (status, answer) = serving.send(
        &format!("GET /?token={}&kind=killed HTTP/1.1", serving.token),
        None,
        "",
    );
    assert_eq!(status, 303, "{answer}");
    let lower = answer.to_ascii_lowercase();
    assert!(
        lower.contains("\r\nlocation: /?kind=killed\r\n"),
        "{answer}"
    );
    assert!(
        lower.contains("set-cookie: cairn_office=")
            && lower.contains("; httponly; samesite=strict"),
        "{answer}"
    );
    // The redirect stays on this server whatever path the link had.
    let (status, answer) = serving.send(
        &format!("GET //evil.example/?token={} HTTP/1.1", serving.token),
        None,
        "",
    );
    assert_eq!(status, 303, "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("\r\nlocation: /\r\n"),
        "{answer}"
    );
    // A report by month over millennia is refused, not drawn.
    let (status, answer) = serving.get("/report?by=month&from=1000-01-01&to=9999-12-31");
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("at most 100 years"), "{answer}");
    // The report page says when its data was taken.
    let (status, answer) = serving.get("/report");
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer.contains("(it has never synced); report made "),
        "{answer}"
    );

    // With the cookie, the page, with its guarding headers, and the hostile text escaped.
    let (status, page) = serving.get(&case_path);
    assert_eq!(status, 200, "{page}");
    let lower = page.to_ascii_lowercase();
    for header in [
        "content-security-policy: default-src 'self'",
        "x-frame-options: deny",
        "referrer-policy: no-referrer",
        "cache-control: no-store",
    ] {
        assert!(lower.contains(header), "{header}: {page}");
    }
    assert!(
        page.contains("&lt;script&gt;alert('x')&lt;/script&gt;"),
        "{page}"
    );
    assert!(page.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
    assert!(!lower.contains("<script") && !lower.contains("<img src=x"));

    // A name pointed at 127.0.0.1 by someone else's DNS is not this server.
    let (status, answer) = serving.send(
        &format!("GET {case_path} HTTP/1.1\r\n{}", serving.cookie()),
        Some(&format!(
            "rebind.example:{}",
            serving.addr.split(':').nth(1).unwrap()
        )),
        "",
    );
    assert_eq!(status, 403, "{answer}");
    assert!(!answer.contains(&reference));

    // Forms: without the CSRF token, with a wrong one, from another origin, or too large,
    // they change nothing.
    let token = csrf(&page);
    let verify = format!("{case_path}/verify");
    let confirm = "status=confirmed&basis=death+certificate";
    for (extra, form, code) in [
        ("", confirm.to_owned(), 403),
        ("", format!("{confirm}&csrf={}", "0".repeat(64)), 403),
        (
            "\r\nOrigin: http://evil.example",
            format!("{confirm}&csrf={token}"),
            403,
        ),
    ] {
        let (status, answer) = serving.post(&verify, extra, &form);
        assert_eq!(status, code, "{extra} {form}: {answer}");
    }
    let huge = format!(
        "POST {verify} HTTP/1.1\r\n{}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000000",
        serving.cookie()
    );
    let (status, answer) = serving.send(&huge, None, "status=confirmed");
    assert_eq!(status, 413, "{answer}");
    // A confirmation needs its basis, here as on the command line.
    let (status, answer) = serving.post(&verify, "", &format!("status=confirmed&csrf={token}"));
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("basis"), "{answer}");
    assert_eq!(status_of(&office, &reference), "alleged");

    // The right form is the same edit as `cairn case verify`, and other commands work
    // while the server runs; a case recorded meanwhile shows on the next page.
    let (status, answer) = serving.post(
        &verify,
        &format!("\r\nOrigin: {}", serving.base()),
        &format!("{confirm}&csrf={token}"),
    );
    assert_eq!(status, 303, "{answer}");
    assert_eq!(status_of(&office, &reference), "confirmed");
    // The pages opened as localhost (a name the server answers to) post from that origin.
    let local = format!("localhost:{}", serving.addr.split(':').nth(1).unwrap());
    let form = format!("{confirm}&csrf={token}");
    let head = format!(
        "POST {verify} HTTP/1.1\r\n{}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nOrigin: http://{local}",
        serving.cookie(),
        form.len()
    );
    let (status, answer) = serving.send(&head, Some(&local), &form);
    assert_eq!(status, 303, "{answer}");
    let later = office.new_case(&["--kind", "missing", "--place", "KHR"]);
    // (A reference is matched in any letter case, as the commands match it.)
    let (later, reference) = (later.to_lowercase(), reference.to_lowercase());
    let (_, table) = serving.get("/");
    let table = table.to_lowercase();
    assert!(
        table.contains(&later) && table.contains(&reference),
        "{table}"
    );
    let (_, killed) = serving.get("/?kind=killed");
    let killed = killed.to_lowercase();
    assert!(killed.contains(&reference) && !killed.contains(&later));

    // SIGTERM ends it cleanly.
    assert_eq!(serving.stop(), Some(0));
}

/// A staff device serves the office's page: every team's cases are listed, and a
/// verification made on the page is signed by the staff device and reaches the office.
#[test]
fn a_staff_device_serves_every_teams_cases_and_decides_on_the_page() {
    let office = Device::office();
    let server = Server::start(&office);
    let url = server.url();
    let (a, b) = (Device::init("T03"), Device::init("T04"));
    server.join(&office, &a, "T03", &url);
    server.join(&office, &b, "T04", &url);
    let rana = Device::staff("Analyst Rana");
    server.join(&office, &rana, "office", &url);
    let in_a = a.new_case(&["--kind", "killed", "--place", "KHR"]);
    let in_b = b.new_case(&["--kind", "missing", "--place", "KHR"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    rana.ok(&["sync"]);

    let serving = Serving::start(&rana);
    let (status, table) = serving.get("/");
    assert_eq!(status, 200, "{table}");
    assert!(table.contains(&in_a) && table.contains(&in_b), "{table}");
    let case_path = format!("/case/{in_b}");
    let (status, page) = serving.get(&case_path);
    assert_eq!(status, 200, "{page}");
    let form = format!(
        "status=confirmed&basis=death+certificate&csrf={}",
        csrf(&page)
    );
    let (status, answer) = serving.post(
        &format!("{case_path}/verify"),
        &format!("\r\nOrigin: {}", serving.base()),
        &form,
    );
    assert_eq!(status, 303, "{answer}");
    assert_eq!(serving.stop(), Some(0));

    rana.ok(&["sync"]);
    office.ok(&["sync"]);
    b.ok(&["sync"]);
    assert_eq!(status_of(&office, &in_b), "confirmed");
    assert_eq!(status_of(&b, &in_b), "confirmed");
    let history = office.ok(&["case", "history", &in_b]);
    assert!(history.contains("Analyst Rana"), "{history}");
}

/// The body of a whole HTTP answer (sent with a length, never chunked), and its headers in
/// lower case.
fn split_answer(answer: &str) -> (String, &str) {
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let head = head.to_ascii_lowercase();
    assert!(!head.contains("transfer-encoding: chunked"), "{head}");
    (head, body)
}

/// The count in the figures table's row labelled `label`, as an edition's page shows it.
fn figure_in(page: &str, label: &str) -> u64 {
    let cell = format!(">{label}</td><td class=\"n\">");
    let (_, rest) = page
        .split_once(&cell)
        .unwrap_or_else(|| panic!("no figure {label} in {page}"));
    rest.split('<').next().unwrap().parse().unwrap()
}

/// Each row label of the figures table and where `report show --json` holds its count.
const FIGURES: [(&str, &str); 14] = [
    ("Killed", "/killed/total"),
    ("Targeted strike", "/killed/by_cause/targeted_strike"),
    ("Captivity", "/killed/by_cause/captivity"),
    ("Other violence", "/killed/by_cause/other_violence"),
    ("Unknown", "/killed/by_cause/unknown"),
    ("Injured", "/injured"),
    ("Missing", "/missing"),
    ("Detained (held alive)", "/detained"),
    ("Remains found", "/remains"),
    ("All persons counted", "/persons"),
    ("Records counted, before linking", "/records"),
    ("Civilians", "/civilians/civilians"),
    ("Identified", "/identification/identified"),
    ("Unidentified", "/identification/unidentified"),
];

fn confirmed_killing(office: &Device, date: &str, cause: &str) -> String {
    let reference = office.new_case(&[
        "--kind",
        "killed",
        "--place",
        "KHR",
        "--set",
        &format!("incident.date={date}"),
        "--set",
        &format!("incident.cause={cause}"),
        "--set",
        "person.civilian=yes",
    ]);
    confirm(office, &reference);
    reference
}

fn confirm(office: &Device, reference: &str) {
    office.ok(&[
        "case",
        "verify",
        reference,
        "--status",
        "confirmed",
        "--basis",
        "death certificate",
    ]);
}

/// The title of the first of [`two_editions`], hostile to a page that does not escape.
const FIRST_TITLE: &str = "Interim <report> & more";

/// Two editions published with the cairn binary, over one period, a case changed between them.
struct TwoEditions {
    /// `cairn report editions --json`.
    listed: serde_json::Value,
    first: String,
    second: String,
    /// Counted of unknown cause in the first, of captivity in the second.
    unknown: String,
    /// Counted in the second only.
    later: String,
}

fn two_editions(office: &Device) -> TwoEditions {
    let _strike = confirmed_killing(office, "2020-10-01", "targeted_strike");
    let unknown = confirmed_killing(office, "2020-10-20", "unknown");
    let publish = |title: &str| {
        office.ok(&[
            "report",
            "publish",
            "--from",
            "2020-09-27",
            "--to",
            "2020-12-22",
            "--title",
            title,
        ])
    };
    publish(FIRST_TITLE);
    // A second later: the second edition is the newer one to the second.
    std::thread::sleep(Duration::from_millis(1100));
    office.ok(&[
        "case",
        "edit",
        &unknown,
        "--set",
        "incident.cause=captivity",
    ]);
    confirm(office, &unknown);
    let later = confirmed_killing(office, "2020-12-01", "captivity");
    publish("Interim report, updated");
    let listed = office.json(&["report", "editions"]);
    let id = |i: usize| listed[i]["id"].as_str().unwrap().to_owned();
    TwoEditions {
        first: id(0),
        second: id(1),
        listed,
        unknown,
        later,
    }
}

/// Two editions published with the cairn binary, a case changed between them: the pages
/// list them, show each as `cairn report show` prints it (not as the vault counts now), serve
/// its signed file byte for byte, say what changed as `report show NEW --since OLD` does, and
/// answer an unknown or hostile name with 404.
#[test]
fn the_editions_pages_show_what_was_published() {
    let office = Device::office();
    let TwoEditions {
        listed,
        first,
        second,
        unknown,
        later,
    } = two_editions(&office);
    let field = |i: usize, key: &str| listed[i][key].as_str().unwrap().to_owned();

    let serving = Serving::start(&office);

    // The list: newest first, each with its period, records, short hash and sentence, and
    // the title escaped.
    let (status, list) = serving.get("/editions");
    assert_eq!(status, 200, "{list}");
    assert!(
        list.contains("<a class=\"current\" href=\"/editions\" aria-current=\"page\">Editions</a>"),
        "{list}"
    );
    assert!(list.contains("Interim &lt;report&gt; &amp; more"), "{list}");
    assert!(!list.contains(FIRST_TITLE), "{list}");
    let at = |needle: &str| {
        list.find(needle)
            .unwrap_or_else(|| panic!("no {needle} in {list}"))
    };
    assert!(
        at(&format!("href=\"/editions/{second}\"")) < at(&format!("href=\"/editions/{first}\""))
    );
    for i in 0..2 {
        assert!(list.contains(&field(i, "hash")[..12]), "{list}");
        assert!(list.contains(&field(i, "sentence")), "{list}");
        assert!(list.contains(&field(i, "published_at")), "{list}");
        let records = listed[i]["records_counted"].as_u64().unwrap();
        assert!(
            list.contains(&format!("<td class=\"n\">{records}</td>")),
            "{list}"
        );
    }
    assert!(list.contains("2020-09-27 to 2020-12-22"), "{list}");

    // Each edition's page: its sentence and every figure as `report show --json` prints
    // them, though the vault counts otherwise now; by its full id or a prefix.
    for id in [&first, &second] {
        let shown = office.json(&["report", "show", id]);
        for path in [format!("/editions/{id}"), format!("/editions/{}", &id[..8])] {
            let (status, page) = serving.get(&path);
            assert_eq!(status, 200, "{page}");
            let sentence = shown["sentence"].as_str().unwrap();
            assert!(
                page.contains(&format!("<p class=\"sentence\">{sentence}</p>")),
                "{sentence} in {page}"
            );
            for (label, pointer) in FIGURES {
                assert_eq!(
                    Some(figure_in(&page, label)),
                    shown.pointer(pointer).and_then(serde_json::Value::as_u64),
                    "{label} of {id}"
                );
            }
            let made = shown["made_at"].as_str().unwrap();
            assert!(page.contains(&format!("report made {made}.")), "{page}");
            assert!(page.contains(&shown["edition"]["hash"].as_str().unwrap()[..12]));
            assert!(
                page.contains(&format!("href=\"/editions/{id}/signed\"")),
                "{page}"
            );
            assert!(
                page.contains(&format!("src=\"/editions/{id}/chart.svg\"")),
                "{page}"
            );
        }
    }
    let (_, page) = serving.get(&format!("/editions/{first}"));
    assert_eq!(figure_in(&page, "Captivity"), 0);
    assert_eq!(figure_in(&page, "Unknown"), 1);
    // The form to compare with offers the other edition.
    assert!(
        page.contains(&format!("action=\"/editions/{first}/since\"")),
        "{page}"
    );
    assert!(
        page.contains(&format!("<option value=\"{second}\" selected>")),
        "{page}"
    );

    // The chart, as `report show --chart` draws it.
    let svg_file = office.home().join("first.svg");
    office.ok(&[
        "report",
        "show",
        &first,
        "--chart",
        svg_file.to_str().unwrap(),
    ]);
    let (status, answer) = serving.get(&format!("/editions/{first}/chart.svg"));
    assert_eq!(status, 200, "{answer}");
    let (head, svg) = split_answer(&answer);
    assert!(head.contains("content-type: image/svg+xml"), "{head}");
    assert_eq!(svg, std::fs::read_to_string(&svg_file).unwrap());

    // The signed edition, byte for byte what `report show --format signed` prints.
    let (status, answer) = serving.get(&format!("/editions/{first}/signed"));
    assert_eq!(status, 200, "{answer}");
    let (head, file) = split_answer(&answer);
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(
        head.contains(&format!(
            "content-disposition: attachment; filename=\"edition-{first}.json\""
        )),
        "{head}"
    );
    assert_eq!(
        file,
        office.ok(&["report", "show", &first, "--format", "signed"])
    );

    // What changed: the sentence of `report show NEW --since OLD`, each case by reference.
    let changes = office.json(&["report", "show", &second, "--since", &first]);
    let (status, page) = serving.get(&format!("/editions/{second}/since/{first}"));
    assert_eq!(status, 200, "{page}");
    let sentence = changes["sentence"].as_str().unwrap();
    assert!(
        page.contains(&format!("<p class=\"sentence\">{sentence}</p>")),
        "{sentence} in {page}"
    );
    assert!(page.contains(&format!("<code>{later}</code>")), "{page}");
    assert!(
        page.contains(&format!(
            "<code>{unknown}</code> cause: unknown → captivity"
        )),
        "{page}"
    );
    assert!(page.contains("Newly counted (1)") && page.contains("Reclassified (1)"));
    // The form sends the later edition as the new one, whichever page it was on.
    let (status, answer) = serving.get(&format!("/editions/{first}/since?old={}", &second[..8]));
    assert_eq!(status, 303, "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains(&format!(
            "\r\nlocation: /editions/{second}/since/{first}\r\n"
        )),
        "{answer}"
    );

    // Unknown and hostile names: 404 with a sentence, escaped; too short: 400.
    for path in [
        "/editions/ffffffff".to_owned(),
        "/editions/%3Cscript%3Ealert(1)%3C%2Fscript%3E".to_owned(),
        "/editions/ffffffff/signed".to_owned(),
        "/editions/ffffffff/chart.svg".to_owned(),
        format!("/editions/{second}/since/ffffffff"),
        format!("/editions/ffffffff/since/{first}"),
        format!("/editions/{first}/since?old=ffffffff"),
    ] {
        let (status, answer) = serving.get(&path);
        assert_eq!(status, 404, "{path}: {answer}");
        assert!(answer.contains("there is no edition"), "{path}: {answer}");
        assert!(!answer.contains("<script>"), "{path}: {answer}");
    }
    let (status, answer) = serving.get("/editions/ab");
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("too short"), "{answer}");
    let (status, answer) = serving.get(&format!("/editions/{first}/since"));
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.contains("pick the edition to compare with"),
        "{answer}"
    );
}

/// Where test artefacts go: `target/test-artefacts/`.
fn artefacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("test-artefacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The first of `names` that is a file, in /usr/bin or on PATH.
fn program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::iter::once(PathBuf::from("/usr/bin"))
        .chain(std::env::split_paths(&path))
        .collect();
    names
        .iter()
        .flat_map(|n| dirs.iter().map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

/// chromedriver on a free loopback port, ended when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start(chromedriver: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Ready when it accepts a connection: at most 10 s.
        let ready = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(ready, "chromedriver did not start on port {port}");
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver, chromium: &Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1000"],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .unwrap()
}

/// The element `css` finds, waiting for it at most 10 s (a page loading after a click).
async fn find(client: &Client, css: &str) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
}

/// Clicks `element` and waits (at most 10 s) until the page it was on has been replaced, so
/// what the test looks for next is read from the page the click loaded, not the one before.
async fn submit(client: &Client, element: fantoccini::elements::Element) {
    let before = find(client, "html").await;
    element.click().await.unwrap();
    let mut last = None;
    for _ in 0..100 {
        match before.tag_name().await {
            Err(e) if e.is_stale_element_reference() => return,
            // Mid-navigation chromedriver may answer another error (its page context being
            // replaced): asked again, it says stale once the new page is in.
            Err(e) => last = Some(e),
            Ok(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("a click did not load a new page in 10 s (last error: {last:?})");
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let path = artefacts().join(name);
    std::fs::write(&path, png).unwrap();
    println!("screenshot: {}", path.display());
}

/// The references the case table shows.
async fn listed(client: &Client) -> Vec<String> {
    find(client, "table.cases").await;
    let mut out = Vec::new();
    for link in client
        .find_all(Locator::Css("table.cases tbody td:first-child a"))
        .await
        .unwrap()
    {
        out.push(link.text().await.unwrap());
    }
    out
}

/// The count in the report's row labelled `label`.
async fn figure(client: &Client, label: &str) -> String {
    find(client, "table.figures").await;
    let xpath = format!(
        "//table[contains(@class,'figures')]//tr[td[1][normalize-space()='{label}']]/td[2]"
    );
    client
        .find(Locator::XPath(&xpath))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_office_reviews_in_a_browser() {
    let (Some(chromium), Some(chromedriver)) = (
        program(&["chromium", "chromium-browser"]),
        program(&["chromedriver"]),
    ) else {
        eprintln!("skipped: chromium not found");
        return;
    };

    // Two field devices edit one case apart: the office receives a conflict on its cause.
    let office = Device::office();
    let config = office.home().parent().unwrap().join("xdg-config/cairn");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.toml"),
        "[places]\nKHR = \"Khan Younis\"\nGZA = \"Gaza City\"\n",
    )
    .unwrap();
    let server = Server::start(&office);
    let url = server.url();
    let a = Device::init("T03");
    let b = Device::init("T03");
    server.join(&office, &a, "T03", &url);
    server.join(&office, &b, "T03", &url);
    let killed = a.new_case(&[
        "--kind",
        "killed",
        "--place",
        "KHR",
        "--set",
        "incident.date=2026-10-02",
        "--set",
        "found.lat=31.3402",
        "--set",
        "found.lon=34.3063",
    ]);
    let injured = a.new_case(&[
        "--kind",
        "injured",
        "--place",
        "GZA",
        "--set",
        "incident.date=2026-10-05",
        "--set",
        "found.lat=31.5017",
        "--set",
        "found.lon=34.4668",
    ]);
    let missing = a.new_case(&["--kind", "missing", "--place", "KHR"]);
    for d in [&a, &b, &a] {
        d.ok(&["sync"]);
    }
    a.ok(&[
        "case",
        "edit",
        &killed,
        "--set",
        "incident.cause=targeted_strike",
    ]);
    b.ok(&["case", "edit", &killed, "--set", "incident.cause=captivity"]);
    for d in [&a, &b, &office] {
        d.ok(&["sync"]);
    }
    let conflicts = office.json(&["case", "conflicts", &killed]);
    assert_eq!(conflicts[0]["field"], "incident.cause", "{conflicts}");

    let serving = Serving::start(&office);
    let driver = Driver::start(&chromedriver);
    let client = browser(&driver, &chromium).await;
    let report = format!("{}/report?from=2026-01-01&to=2026-12-31", serving.base());

    // Open with the token: the table lists every case.
    client
        .goto(&format!("{}/?token={}", serving.base(), serving.token))
        .await
        .unwrap();
    let mut all = listed(&client).await;
    all.sort();
    let mut expected = vec![killed.clone(), injured.clone(), missing.clone()];
    expected.sort();
    assert_eq!(all, expected);
    assert!(
        !client
            .current_url()
            .await
            .unwrap()
            .as_str()
            .contains("token"),
        "the token stays in the address bar"
    );
    screenshot(&client, "office-table.png").await;

    // Filter by kind.
    find(&client, "select[name=kind]")
        .await
        .select_by_value("killed")
        .await
        .unwrap();
    submit(&client, find(&client, "form.filters button").await).await;
    let shown = listed(&client).await;
    assert!(client
        .current_url()
        .await
        .unwrap()
        .as_str()
        .contains("kind=killed"));
    assert_eq!(shown, vec![killed.clone()]);

    // Before the verification, nothing is counted: every case is still alleged.
    client.goto(&report).await.unwrap();
    assert_eq!(figure(&client, "Killed").await, "0");

    // The case page: its conflict, resolved by picking a value.
    client.goto(&serving.base()).await.unwrap();
    submit(
        &client,
        find(&client, &format!("a[href='/case/{killed}']")).await,
    )
    .await;
    find(&client, "section.conflicts").await;
    screenshot(&client, "office-case.png").await;
    let keep = client
        .find(Locator::XPath(
            "//section[contains(@class,'conflicts')]//button[normalize-space()='Keep captivity']",
        ))
        .await
        .unwrap();
    submit(&client, keep).await;
    find(&client, "p.notice").await;
    assert!(client
        .find_all(Locator::Css("section.conflicts"))
        .await
        .unwrap()
        .is_empty());
    let conflicts = office.json(&["case", "conflicts", &killed]);
    assert_eq!(conflicts, serde_json::json!([]));
    assert_eq!(
        office.json(&["case", "show", &killed])["incident"]["cause"],
        "captivity"
    );

    // Verify it: confirmed, with its basis.
    find(&client, "select[name=status]")
        .await
        .select_by_value("confirmed")
        .await
        .unwrap();
    find(&client, "textarea[name=basis]")
        .await
        .send_keys("death certificate KHR-2026-114")
        .await
        .unwrap();
    submit(
        &client,
        find(&client, "form[action$='/verify'] button").await,
    )
    .await;
    find(&client, "p.notice").await;
    assert_eq!(
        find(&client, "p.headline .status")
            .await
            .text()
            .await
            .unwrap(),
        "confirmed"
    );
    let case = office.json(&["case", "show", &killed]);
    assert_eq!(
        case["verifications"][0]["basis"],
        "death certificate KHR-2026-114"
    );

    // The report now counts it, by its cause.
    client.goto(&report).await.unwrap();
    assert_eq!(figure(&client, "Killed").await, "1");
    assert_eq!(figure(&client, "Captivity").await, "1");
    find(&client, "img.chart").await;
    screenshot(&client, "office-report.png").await;

    // A teammate edits the confirmed case's kind and cause: the edit is kept, the case page
    // shows what changed since the office confirmed it (confirmed → now), and the report
    // does not move until the office confirms again.
    office.ok(&["sync"]);
    a.ok(&["sync"]);
    a.ok(&[
        "case",
        "edit",
        &killed,
        "--set",
        "kind=injured",
        "--set",
        "incident.cause=targeted_strike",
    ]);
    a.ok(&["sync"]);
    office.ok(&["sync"]);
    client.goto(&report).await.unwrap();
    assert_eq!(figure(&client, "Killed").await, "1");
    assert_eq!(figure(&client, "Captivity").await, "1");
    assert_eq!(figure(&client, "Injured").await, "0");
    client.goto(&serving.base()).await.unwrap();
    find(&client, "table.cases span.changed").await;
    client
        .goto(&format!("{}/case/{killed}", serving.base()))
        .await
        .unwrap();
    let mut rows = Vec::new();
    for row in client
        .find_all(Locator::Css("section.changed tbody tr"))
        .await
        .unwrap()
    {
        rows.push(row.text().await.unwrap());
    }
    assert_eq!(
        rows,
        [
            "kind killed → injured",
            "incident.cause captivity → targeted_strike"
        ]
    );
    assert_eq!(
        find(&client, "p.headline .changed")
            .await
            .text()
            .await
            .unwrap(),
        "changed since confirmed"
    );
    screenshot(&client, "changed-since-confirmed.png").await;
    // The office confirms it again, as it now stands: the count moves.
    find(&client, "select[name=status]")
        .await
        .select_by_value("confirmed")
        .await
        .unwrap();
    find(&client, "textarea[name=basis]")
        .await
        .send_keys("hospital record: injured, not killed")
        .await
        .unwrap();
    submit(
        &client,
        find(&client, "form[action$='/verify'] button").await,
    )
    .await;
    find(&client, "p.notice").await;
    assert!(client
        .find_all(Locator::Css("section.changed"))
        .await
        .unwrap()
        .is_empty());
    client.goto(&report).await.unwrap();
    assert_eq!(figure(&client, "Killed").await, "0");
    assert_eq!(figure(&client, "Injured").await, "1");

    // The map: a point for each case with coordinates, place names from the configuration.
    client
        .goto(&format!("{}/map", serving.base()))
        .await
        .unwrap();
    find(&client, "svg.map").await;
    let points = client
        .find_all(Locator::Css("svg.map a circle"))
        .await
        .unwrap();
    assert_eq!(points.len(), 2);
    let places = client
        .find_all(Locator::Css("svg.map text.place"))
        .await
        .unwrap();
    let mut names = Vec::new();
    for p in places {
        names.push(p.text().await.unwrap());
    }
    names.sort();
    assert_eq!(names, ["Gaza City", "Khan Younis"]);
    screenshot(&client, "office-map.png").await;

    // Without the cookie the browser is refused.
    client.delete_all_cookies().await.unwrap();
    client.goto(&serving.base()).await.unwrap();
    assert_eq!(
        find(&client, "h1").await.text().await.unwrap(),
        "Unauthorized"
    );
    assert!(client
        .find_all(Locator::Css("table.cases"))
        .await
        .unwrap()
        .is_empty());

    client.close().await.unwrap();
    drop(server);
}

/// The links `cairn case links REF --json` lists.
fn links_of(office: &Device, reference: &str) -> Vec<serde_json::Value> {
    office
        .json(&["case", "links", reference])
        .as_array()
        .unwrap()
        .clone()
}

/// The pair pages and the case page's links over plain HTTP: a hostile name is escaped, bad
/// input is refused with a sentence and records nothing, a decision is recorded in both
/// cases, and a person that contradicts a `distinct` decision is flagged.
#[test]
fn the_pair_page_escapes_and_refuses_bad_decisions() {
    let office = Device::office();
    let case = |name: &str, kind: &str| {
        office.new_case(&[
            "--kind",
            kind,
            "--place",
            "KHR",
            "--set",
            &format!("person.name={name}"),
            "--set",
            "person.sex=male",
            "--set",
            "person.age_years=34",
            "--set",
            "incident.date=2026-10-02",
        ])
    };
    let a = case(HOSTILE, "killed");
    let b = case(HOSTILE, "killed");
    let c = case("Hovhannes Sargsyan", "killed");
    let serving = Serving::start(&office);
    let pair = format!("/matches/{a}/{b}");

    let (status, page) = serving.get(&pair);
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("&lt;script&gt;alert('x')&lt;/script&gt;"),
        "{page}"
    );
    assert!(!page.to_ascii_lowercase().contains("<script"), "{page}");
    // Two killings: one person or two, never `identifies`.
    assert!(page.contains("value=\"same_person\"") && page.contains("value=\"distinct\""));
    assert!(!page.contains("value=\"identifies\""), "{page}");
    // Remains and a missing person: `identifies`, not same_person.
    let remains = office.new_case(&["--kind", "remains", "--place", "KHR"]);
    let missing = office.new_case(&["--kind", "missing", "--place", "KHR"]);
    let (status, page) = serving.get(&format!("/matches/{remains}/{missing}"));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("value=\"identifies\"") && page.contains("value=\"distinct\""));
    assert!(!page.contains("value=\"same_person\""), "{page}");
    let (status, list) = serving.get("/matches?min=0");
    assert_eq!(status, 200, "{list}");
    assert!(!list.to_ascii_lowercase().contains("<script"), "{list}");

    // Bad addresses: a sentence, not a panic.
    for (path, code, says) in [
        ("/matches?min=2".to_owned(), 400, "from 0 to 1"),
        ("/matches?min=abc".to_owned(), 400, "from 0 to 1"),
        ("/matches?page=0".to_owned(), 400, "page number"),
        (format!("/matches/{a}/KHR-NOPE-0000-0001"), 404, "no case"),
        (
            format!("/matches/{a}/{}", a.to_lowercase()),
            400,
            "one case twice",
        ),
    ] {
        let (status, answer) = serving.get(&path);
        assert_eq!(status, code, "{path}: {answer}");
        assert!(answer.contains(says), "{path}: {answer}");
    }

    // Bad decisions are refused and record nothing.
    let token = csrf(&page);
    for (form, says) in [
        (
            format!("relation=maybe&basis=x&csrf={token}"),
            "unknown relation",
        ),
        (
            format!("relation=same_person&basis=+&csrf={token}"),
            "basis",
        ),
        (format!("relation=same_person&csrf={token}"), "basis"),
        (format!("basis=seen&csrf={token}"), "unknown relation"),
        (
            format!("relation=identifies&basis=seen&csrf={token}"),
            "identifies",
        ),
    ] {
        let (status, answer) = serving.post(&pair, "", &form);
        assert_eq!(status, 400, "{form}: {answer}");
        assert!(answer.contains(says), "{form}: {answer}");
    }
    let (status, _) = serving.post(
        &format!("/matches/{a}/KHR-NOPE-0000-0001"),
        "",
        &format!("relation=distinct&basis=seen&csrf={token}"),
    );
    assert_eq!(status, 404);
    assert!(links_of(&office, &a).is_empty() && links_of(&office, &b).is_empty());

    // A decision: recorded in both cases, and the candidates page says so.
    let (status, answer) = serving.post(
        &pair,
        "",
        &format!("relation=same_person&basis=one+list+copied+into+another&csrf={token}"),
    );
    assert_eq!(status, 303, "{answer}");
    let location = answer
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("location:")
                .then(|| l[9..].trim().to_owned())
        })
        .unwrap();
    assert!(location.starts_with("/matches?done=linked"), "{location}");
    let (_, list) = serving.get(&location);
    assert!(
        list.contains(&format!("Recorded: {a} and {b} as same_person.")),
        "{list}"
    );
    for (this, other) in [(&a, &b), (&b, &a)] {
        let links = links_of(&office, this);
        assert_eq!(links.len(), 1, "{links:?}");
        assert_eq!(links[0]["other"], other.as_str());
        assert_eq!(links[0]["basis"], "one list copied into another");
    }
    // A forged notice names no pair that was not decided.
    let (_, list) = serving.get(&format!("/matches?done=linked&a={a}&b={c}"));
    assert!(!list.contains("Recorded:"), "{list}");

    // b and c one person, a and c decided distinct (after a first, superseded, same_person):
    // a's person holds c, which the office said is someone else.
    for (x, y, relation) in [
        (&b, &c, "same_person"),
        (&a, &c, "same_person"),
        (&a, &c, "distinct"),
    ] {
        office.ok(&["case", "link", x, y, "--as", relation, "--basis", "test"]);
    }
    let (status, page) = serving.get(&format!("/case/{a}"));
    assert_eq!(status, 200, "{page}");
    let (_, section) = page.split_once("section class=\"contradiction\"").unwrap();
    assert!(
        section.contains(&format!("href=\"/matches/{a}/{c}\"")),
        "{section}"
    );
    let (_, links) = page.split_once("table class=\"links\"").unwrap();
    let links = links.split("</table>").next().unwrap();
    let rows: Vec<&str> = links.split("<tr class=").skip(1).collect();
    assert_eq!(rows.len(), 3, "{links}");
    // In force first (newest first), then the superseded one.
    assert!(rows[0].starts_with("\"in-force\"") && rows[0].contains(">distinct<"));
    assert!(rows[0].contains(&format!("href=\"/case/{c}\"")), "{links}");
    assert!(rows[1].starts_with("\"in-force\"") && rows[1].contains(&format!(">{b}<")));
    assert!(rows[2].starts_with("\"superseded\"") && rows[2].contains(">same_person<"));
    // b is in that person too, but in no distinct pair: nothing to decide again on its page.
    let (_, page) = serving.get(&format!("/case/{b}"));
    assert!(!page.contains("section class=\"contradiction\""), "{page}");
    // The table flags the two cases of the distinct pair.
    let (_, table) = serving.get("/");
    assert_eq!(
        table.matches("contradicts a distinct decision").count(),
        2,
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_office_links_records_in_a_browser() {
    let (Some(chromium), Some(chromedriver)) = (
        program(&["chromium", "chromium-browser"]),
        program(&["chromedriver"]),
    ) else {
        eprintln!("skipped: chromium not found");
        return;
    };
    // Lists as several sources would write them: some persons recorded twice.
    let g = cairn_link::generate::generate(120, 21);
    let office = Device::office();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("lists.csv");
    g.write_csv(std::fs::File::create(&csv).unwrap()).unwrap();
    office.ok(&["case", "import", csv.to_str().unwrap()]);

    let serving = Serving::start(&office);
    let driver = Driver::start(&chromedriver);
    let client = browser(&driver, &chromium).await;
    client
        .goto(&format!("{}/?token={}", serving.base(), serving.token))
        .await
        .unwrap();
    find(&client, "table.cases").await;
    submit(&client, find(&client, "nav.bar a[href='/matches']").await).await;
    find(&client, "table.matches").await;
    screenshot(&client, "office-matches.png").await;

    // The first pair proposed as one person.
    let row = find(&client, "table.matches tr.same_person").await;
    let open = row.find(Locator::Css("a.pair")).await.unwrap();
    let href = open.attr("href").await.unwrap().unwrap();
    let (a, b) = href
        .strip_prefix("/matches/")
        .and_then(|r| r.split_once('/'))
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .unwrap();

    // Without the CSRF token the form records nothing.
    let (status, answer) = serving.post(&href, "", "relation=same_person&basis=forged");
    assert_eq!(status, 403, "{answer}");
    assert!(links_of(&office, &a).is_empty() && links_of(&office, &b).is_empty());

    // The pair page: both cases side by side, the evidence, the decision.
    submit(&client, open).await;
    find(&client, "form.decide").await;
    let heads = client
        .find_all(Locator::Css("table.pair thead th a"))
        .await
        .unwrap();
    let mut shown = Vec::new();
    for h in heads {
        shown.push(h.text().await.unwrap());
    }
    assert_eq!(shown, [a.clone(), b.clone()]);
    let evidence = client
        .find_all(Locator::Css("table.evidence tbody tr"))
        .await
        .unwrap();
    assert!(!evidence.is_empty());
    let fields: Vec<String> = {
        let mut out = Vec::new();
        for row in evidence {
            out.push(
                row.find(Locator::Css("td"))
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap(),
            );
        }
        out
    };
    assert!(fields.iter().any(|f| f == "name"), "{fields:?}");
    screenshot(&client, "office-pair.png").await;
    find(&client, "input[name=relation][value=same_person]")
        .await
        .click()
        .await
        .unwrap();
    find(&client, "textarea[name=basis]")
        .await
        .send_keys("same name, age and date in two lists")
        .await
        .unwrap();
    // (Clicking the choice scrolled the form into view.)
    screenshot(&client, "office-pair-decision.png").await;
    submit(&client, find(&client, "form.decide button").await).await;
    let notice = find(&client, "p.notice").await.text().await.unwrap();
    assert_eq!(notice, format!("Recorded: {a} and {b} as same_person."));
    // The pair is no longer proposed.
    let hrefs = client
        .find_all(Locator::Css("table.matches a.pair"))
        .await
        .unwrap();
    for link in hrefs {
        let other = link.attr("href").await.unwrap().unwrap();
        assert!(
            other != href && other != format!("/matches/{b}/{a}"),
            "{other} is still proposed"
        );
    }
    let left = office.json(&["office", "match"]);
    let proposed = |p: &serde_json::Value, x: &str, y: &str| p["a"] == x && p["b"] == y;
    assert!(!left
        .as_array()
        .unwrap()
        .iter()
        .any(|p| proposed(p, &a, &b) || proposed(p, &b, &a)));

    // Both case pages show the link, with the other case's page a click away.
    for (this, other) in [(&a, &b), (&b, &a)] {
        client
            .goto(&format!("{}/case/{this}", serving.base()))
            .await
            .unwrap();
        let row = find(&client, "table.links tbody tr.in-force").await;
        let text = row.text().await.unwrap();
        assert!(
            text.starts_with("same_person")
                && text.contains("same name, age and date in two lists"),
            "{text}"
        );
        row.find(Locator::Css(&format!("a[href='/case/{other}']")))
            .await
            .unwrap();
    }
    screenshot(&client, "office-case-links.png").await;

    // Every pair at all, a hundred a page.
    client
        .goto(&format!("{}/matches?min=0", serving.base()))
        .await
        .unwrap();
    let count = find(&client, "p.count").await.text().await.unwrap();
    let pairs: usize = count.split(' ').next().unwrap().parse().unwrap();
    assert!(pairs > 100, "{count}");
    let rows = |client: &Client| {
        let client = client.clone();
        async move {
            client
                .find_all(Locator::Css("table.matches tbody tr"))
                .await
                .unwrap()
                .len()
        }
    };
    assert_eq!(rows(&client).await, 100);
    submit(&client, find(&client, "nav.pages a[rel=next]").await).await;
    find(&client, "table.matches").await;
    assert_eq!(rows(&client).await, (pairs - 100).min(100));
    assert!(client
        .current_url()
        .await
        .unwrap()
        .as_str()
        .ends_with("/matches?min=0&page=2"));
    assert_eq!(links_of(&office, &a)[0]["relation"], "same_person");

    client.close().await.unwrap();
}

/// In chromium: from the bar to the editions, to the first as published (its chart loaded
/// under the page's policy), and from its form to what changed since.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_office_reads_editions_in_a_browser() {
    let (Some(chromium), Some(chromedriver)) = (
        program(&["chromium", "chromium-browser"]),
        program(&["chromedriver"]),
    ) else {
        eprintln!("skipped: chromium not found");
        return;
    };
    let office = Device::office();
    let two = two_editions(&office);
    let changes = office.json(&["report", "show", &two.second, "--since", &two.first]);
    let serving = Serving::start(&office);
    let driver = Driver::start(&chromedriver);
    let client = browser(&driver, &chromium).await;
    client
        .goto(&format!("{}/?token={}", serving.base(), serving.token))
        .await
        .unwrap();

    submit(&client, find(&client, "nav.bar a[href='/editions']").await).await;
    let newest = find(&client, "table.editions tbody tr td a").await;
    assert_eq!(newest.text().await.unwrap(), "Interim report, updated");
    screenshot(&client, "office-editions.png").await;
    let older = format!("table.editions a[href='/editions/{}']", two.first);
    submit(&client, find(&client, &older).await).await;
    assert_eq!(find(&client, "h1").await.text().await.unwrap(), FIRST_TITLE);
    assert_eq!(figure(&client, "Unknown").await, "1");
    assert_eq!(figure(&client, "Captivity").await, "0");
    // The chart is an image of this server's: loaded, so the page's policy lets it in.
    let mut loaded = false;
    for _ in 0..100 {
        let script = "const i = document.querySelector('img.chart'); return i.complete && i.naturalWidth > 0;";
        loaded = client.execute(script, vec![]).await.unwrap() == serde_json::Value::Bool(true);
        if loaded {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(loaded, "the chart did not load");
    screenshot(&client, "office-edition.png").await;

    // The form offers the later edition; what changed is its own page.
    submit(&client, find(&client, "form.filters button").await).await;
    assert_eq!(
        find(&client, "p.sentence").await.text().await.unwrap(),
        changes["sentence"].as_str().unwrap()
    );
    assert_eq!(
        client.current_url().await.unwrap().path(),
        format!("/editions/{}/since/{}", two.second, two.first)
    );
    let body = find(&client, "main").await.text().await.unwrap();
    assert!(
        body.contains(&two.later) && body.contains(&two.unknown),
        "{body}"
    );
    screenshot(&client, "office-edition-since.png").await;
    client.close().await.unwrap();
}

/// Search by a person's name (issue #22, item 4), on the command line and on the page: any
/// script, diacritics or none, any order, the start of a word, a transliteration.
#[test]
fn a_person_is_found_by_name_however_it_is_spelled() {
    let office = Device::office();
    let named = |name: &str| {
        office.new_case(&[
            "--kind",
            "missing",
            "--place",
            "KHR",
            "--set",
            &format!("person.name={name}"),
        ])
    };
    let aram = named("Հովհաննիսյան Արամ Գևորգի");
    let sara = named("Sára Haddad");
    named("Maria Petrosyan");
    let found = |query: &str| -> Vec<String> {
        let list = office.json(&["case", "list", "--name", query]);
        list.as_array()
            .unwrap()
            .iter()
            .map(|c| c["reference"].as_str().unwrap().to_owned())
            .collect()
    };
    for query in [
        "aram",
        "ARAM HOVHANNISYAN",
        "hovh",
        "Ованесян Арам",
        "gevorg",
    ] {
        assert_eq!(found(query), std::slice::from_ref(&aram), "{query}");
    }
    assert_eq!(found("sara"), std::slice::from_ref(&sara));
    assert!(found("aram petrosyan").is_empty());
    assert_eq!(office.ok(&["case", "list", "--name", "zzz"]), "no cases\n");

    let serving = Serving::start(&office);
    for (query, want, not) in [("sara", &sara, &aram), ("hovhannisyan", &aram, &sara)] {
        let (status, page) = serving.get(&format!("/?q={query}"));
        assert_eq!(status, 200, "{page}");
        assert!(page.contains(want.as_str()), "{query}: {page}");
        assert!(!page.contains(not.as_str()), "{query}: {page}");
    }
}

/// A real PNG of `width` × `height` pixels of one colour.
fn png_image(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    let pixels: Vec<u8> = (0..width * height).flat_map(|_| rgb).collect();
    writer.write_image_data(&pixels).unwrap();
    writer.finish().unwrap();
    out
}

/// An MBTiles file at `path` whose metadata says `format`, holding `tiles` as
/// (zoom, column, row counted from the top, bytes).
fn mbtiles(path: &Path, format: &str, tiles: &[(u8, u32, u32, Vec<u8>)]) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE metadata (name TEXT, value TEXT);
         CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);",
    )
    .unwrap();
    for (name, value) in [
        ("name", "test"),
        ("format", format),
        ("attribution", "Test tiles <b>bold</b>"),
    ] {
        conn.execute("INSERT INTO metadata VALUES (?1, ?2)", [name, value])
            .unwrap();
    }
    for (z, x, y, bytes) in tiles {
        // MBTiles counts rows from the bottom.
        let row = (1u32 << z) - 1 - y;
        conn.execute(
            "INSERT INTO tiles VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![z, x, row, bytes],
        )
        .unwrap();
    }
}

/// The headers and body of an answer.
fn head_and_body(answer: &[u8]) -> (String, &[u8]) {
    let at = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an answer with headers");
    (
        String::from_utf8_lossy(&answer[..at]).to_lowercase(),
        &answer[at + 4..],
    )
}

/// The office sees a photo on a case page and downloads it, decrypted as `case attachment
/// get` decrypts it and sent so no file becomes a page (SVG and HTML go as downloads); an
/// attachment whose bytes have not arrived says so; a field is changed in the page as
/// `case edit --set` changes it, a misspelt value refused on the page with the model's words;
/// the base map's tiles are served from the MBTiles file given, a vector one refused at start;
/// the table comes in pages that keep the filter; every page says when its data is from.
#[test]
fn photos_fields_base_map_and_pages_over_http() {
    let office = Device::office();
    let dir = office.home().parent().unwrap().to_path_buf();
    let server = Server::start(&office);
    let field = Device::init("T03");
    server.join(&office, &field, "T03", &server.url());
    let reference = field.new_case(&[
        "--kind",
        "killed",
        "--place",
        "KHR",
        "--set",
        "found.lat=31.34",
        "--set",
        "found.lon=34.30",
    ]);
    let photo = png_image(40, 30, [200, 30, 30]);
    let files = [
        ("photo.png", photo.clone()),
        (
            "drawing.svg",
            b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>".to_vec(),
        ),
        (
            "page.jpg",
            b"<!DOCTYPE html><script>alert(1)</script>".to_vec(),
        ),
        ("kept back.png", png_image(4, 4, [0, 0, 255])),
    ];
    for (name, bytes) in &files {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        field.ok(&["case", "attach", &reference, path.to_str().unwrap()]);
    }
    let listed = field.json(&["case", "attachments", &reference]);
    let hash_of = |name: &str| -> String {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["attachment"]["name"] == name)
            .unwrap()["attachment"]["sha256"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // One is never sent: the office lists it without its bytes.
    field.ok(&[
        "case",
        "attachment",
        "drop",
        &reference,
        &hash_of("kept back.png"),
        "--reason",
        "taken by mistake",
    ]);
    field.ok(&["sync"]);
    office.ok(&["sync"]);

    let tiles_file = dir.join("tiles.mbtiles");
    let tile = png_image(256, 256, [170, 210, 230]);
    mbtiles(
        &tiles_file,
        "png",
        &[
            (0, 0, 0, tile.clone()),
            (1, 1, 0, png_image(256, 256, [1, 2, 3])),
            // A page among the tiles: never served.
            (
                1,
                0,
                1,
                b"<!DOCTYPE html><script>alert(1)</script>".to_vec(),
            ),
        ],
    );
    let serving = Serving::start_with(&office, &["--basemap", tiles_file.to_str().unwrap()]);

    // The case page shows the photo (its bytes are here), offers each file, and says which
    // has not arrived.
    let (status, page) = serving.get(&format!("/case/{reference}"));
    assert_eq!(status, 200, "{page}");
    let photo_url = format!("/case/{reference}/attachment/{}", hash_of("photo.png"));
    assert!(page.contains(&format!("src=\"{photo_url}\"")), "{page}");
    assert_eq!(page.matches("<img class=\"photo\"").count(), 1, "{page}");
    assert!(page.contains("Not fetched yet"), "{page}");
    assert!(page.contains("class=\"as-of\""), "{page}");
    let (status, answer) = serving.send_bytes(
        &format!("GET {photo_url} HTTP/1.1\r\n{}", serving.cookie()),
        None,
        "",
    );
    assert_eq!(status, 200);
    let (head, body) = head_and_body(&answer);
    assert_eq!(body, photo.as_slice(), "the photo as taken");
    assert!(head.contains("content-type: image/png"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(head.contains("content-disposition: inline"), "{head}");
    let (_, answer) = serving.send_bytes(
        &format!(
            "GET {photo_url}?download=yes HTTP/1.1\r\n{}",
            serving.cookie()
        ),
        None,
        "",
    );
    let (head, _) = head_and_body(&answer);
    assert!(
        head.contains("content-disposition: attachment; filename=\"photo.png\""),
        "{head}"
    );
    // A script in an SVG, a page named .jpg: downloads, never a type a browser renders.
    for (name, bytes) in &files[1..3] {
        let (status, answer) = serving.send_bytes(
            &format!(
                "GET /case/{reference}/attachment/{} HTTP/1.1\r\n{}",
                hash_of(name),
                serving.cookie()
            ),
            None,
            "",
        );
        assert_eq!(status, 200, "{name}");
        let (head, body) = head_and_body(&answer);
        assert_eq!(body, bytes.as_slice());
        assert!(
            head.contains("content-type: application/octet-stream"),
            "{name}: {head}"
        );
        assert!(head.contains("content-disposition: attachment"), "{name}");
        assert!(
            !head.contains("image/svg") && !head.contains("text/html"),
            "{head}"
        );
    }
    // Bytes not here, a hash of nothing, a forged one: refused, nothing sent.
    for hash in [
        hash_of("kept back.png"),
        "ab".repeat(32),
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E".to_owned(),
    ] {
        let (status, page) = serving.get(&format!("/case/{reference}/attachment/{hash}"));
        assert_eq!(status, 400, "{hash}: {page}");
        assert!(page.contains("<p class=\"error\">"), "{page}");
        assert!(!page.contains("<script>"), "{page}");
    }

    // A field changed in the page is the edit `case edit --set` makes.
    let form = |field: &str, value: &str, csrf_token: &str| {
        serde_urlencoded::to_string([("csrf", csrf_token), ("field", field), ("value", value)])
            .unwrap()
    };
    let token = csrf(&page);
    let set = format!("/case/{reference}/set");
    let (status, answer) =
        serving.post(&set, "", &form("incident.cause", "targted_strike", &token));
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.contains("<p class=\"error\">Not recorded: ") && answer.contains("targted_strike"),
        "{answer}"
    );
    assert!(
        answer.contains("<table class=\"fields\">"),
        "the case page, with the refusal"
    );
    let (status, answer) =
        serving.post(&set, "", &form("incident.cause", "targeted_strike", &token));
    assert_eq!(status, 303, "{answer}");
    assert!(answer.contains("done=recorded"), "{answer}");
    let case = office.json(&["case", "show", &reference]);
    assert_eq!(case["incident"]["cause"], "targeted_strike");
    let (status, _) = serving.post(&set, "", &form("incident.cause", "", &token));
    assert_eq!(status, 303);
    let case = office.json(&["case", "show", &reference]);
    assert!(
        case["incident"].get("cause").is_none_or(|c| c.is_null()),
        "{case}"
    );
    let (status, _) = serving.post(&set, "", &form("no.such", "1", &token));
    assert_eq!(status, 400);
    // Without this run's CSRF token: refused before anything is read.
    let (status, _) = serving.post(&set, "", &form("incident.cause", "captivity", "forged"));
    assert_eq!(status, 403);
    assert!(office.json(&["case", "show", &reference])["incident"]
        .get("cause")
        .is_none_or(|c| c.is_null()));

    // The base map: its tiles, as stored, with their type; none where it has none.
    let (status, answer) = serving.send_bytes(
        &format!("GET /basemap/0/0/0 HTTP/1.1\r\n{}", serving.cookie()),
        None,
        "",
    );
    assert_eq!(status, 200);
    let (head, body) = head_and_body(&answer);
    assert!(head.contains("content-type: image/png"), "{head}");
    assert_eq!(body, tile.as_slice());
    for missing in [
        "/basemap/1/0/0",
        "/basemap/0/1/0",
        "/basemap/30/0/0",
        "/basemap/1/0/1",
    ] {
        assert_eq!(serving.get(missing).0, 404, "{missing}");
    }
    assert_eq!(serving.get("/basemap/x/0/0").0, 400);
    let (status, map) = serving.get("/map?z=1&lat=0&lon=0");
    assert_eq!(status, 200, "{map}");
    assert!(
        map.contains("<image class=\"tile\" href=\"/basemap/1/1/0\""),
        "{map}"
    );
    assert!(
        !map.contains("class=\"land\""),
        "no outline under a base map"
    );
    assert!(
        map.contains("Base map: Test tiles &lt;b&gt;bold&lt;/b&gt;"),
        "{map}"
    );
    drop(serving);

    // A vector MBTiles, a file that is no MBTiles, and one of JPEG claims holding gzip: refused
    // at start, with why, before the passphrase is asked.
    let vector = dir.join("vector.mbtiles");
    mbtiles(&vector, "pbf", &[(0, 0, 0, vec![0x1f, 0x8b, 8, 0])]);
    let not_sqlite = dir.join("notes.mbtiles");
    std::fs::write(&not_sqlite, "hello").unwrap();
    let lying = dir.join("lying.mbtiles");
    mbtiles(&lying, "jpg", &[(0, 0, 0, vec![0x1f, 0x8b, 8, 0])]);
    for (file, why) in [
        (&vector, "vector tiles"),
        (&not_sqlite, "not an MBTiles file"),
        (&lying, "compressed vector tiles"),
    ] {
        let run = office.run(&[
            "office",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--basemap",
            file.to_str().unwrap(),
        ]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(run.stderr.contains(why), "{why}: {}", run.stderr);
    }

    // Pages of the table, the filter kept from one to the next.
    let rows: String = (0..230)
        .map(|i| format!("GZA,{},31.5,34.46\n", ["killed", "missing"][i % 2]))
        .collect();
    let csv = dir.join("cases.csv");
    std::fs::write(&csv, format!("place,kind,found.lat,found.lon\n{rows}")).unwrap();
    office.ok(&["case", "import", csv.to_str().unwrap()]);
    let serving = Serving::start(&office);
    let (status, first) = serving.get("/?kind=missing");
    assert_eq!(status, 200);
    assert_eq!(first.matches("<td><a href=\"/case/").count(), 100);
    assert!(
        first.contains("Cases 1–100 of 115 found, of 231 cases."),
        "{first}"
    );
    assert!(
        first.contains("href=\"/?kind=missing&amp;page=2\""),
        "{first}"
    );
    let (_, last) = serving.get("/?kind=missing&page=2");
    assert_eq!(last.matches("<td><a href=\"/case/").count(), 15);
    assert!(!last.contains("rel=\"next\""));
    // A page past the last shows the last; a page that is no number is refused.
    let (_, past) = serving.get("/?kind=missing&page=99");
    assert!(past.contains("Page 2 of 2"), "{past}");
    assert_eq!(serving.get("/?page=x").0, 400);
    // Each page says when its data is from.
    for path in ["/", "/map", "/report"] {
        let (_, page) = serving.get(path);
        assert!(page.contains("Data as of "), "{path}: {page}");
    }
    drop(server);
}

/// How many cases the office holds in the browser test at scale.
const AT_SCALE: usize = 100_000;

/// A photo worth looking at: a gradient of `width` × `height` pixels.
fn gradient_png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    let pixels: Vec<u8> = (0..height)
        .flat_map(|y| {
            (0..width).flat_map(move |x| [(x * 255 / width) as u8, 120, (y * 255 / height) as u8])
        })
        .collect();
    writer.write_image_data(&pixels).unwrap();
    writer.finish().unwrap();
    out
}

/// The office at 100,000 cases (one `cairn case import`), in chromium: the first page of the
/// table has its first 100 rows and the next page the next 100 (the time the browser took to
/// load it is printed, for docs/BENCHMARKS.md), a transliterated name finds its case, the map
/// gathers every case into clusters and a click on one zooms in, and a case's photo shows.
/// Screenshots go to `target/test-artefacts/` (docs/screens/ holds copies).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_office_at_100000_cases_in_a_browser() {
    let (Some(chromium), Some(chromedriver)) = (
        program(&["chromium", "chromium-browser"]),
        program(&["chromedriver"]),
    ) else {
        eprintln!("skipped: chromium not found");
        return;
    };
    let office = Device::office();
    let dir = office.home().parent().unwrap().to_path_buf();
    let config = dir.join("xdg-config/cairn");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.toml"),
        "[places]\nKHR = \"Khan Younis\"\nGZA = \"Gaza City\"\n",
    )
    .unwrap();
    // Cases scattered round two towns, one of them named in Armenian.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut csv = String::from("place,kind,found.lat,found.lon,person.name\n");
    let named_row = AT_SCALE / 3;
    for i in 0..AT_SCALE {
        let (place, lat, lon) = if i % 3 == 0 {
            ("GZA", 31.50, 34.46)
        } else {
            ("KHR", 31.34, 34.30)
        };
        let jitter = |n: u64| (n % 10_000) as f64 / 10_000.0 * 0.06 - 0.03;
        let name = if i == named_row {
            "Հովհաննիսյան Արամ Գևորգի"
        } else {
            ""
        };
        csv.push_str(&format!(
            "{place},{},{:.5},{:.5},{name}\n",
            ["killed", "injured", "missing", "remains"][i % 4],
            lat + jitter(next()),
            lon + jitter(next()),
        ));
    }
    let file = dir.join("cases.csv");
    std::fs::write(&file, csv).unwrap();
    let started = std::time::Instant::now();
    office.ok(&["case", "import", file.to_str().unwrap()]);
    println!(
        "imported {AT_SCALE} cases in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let named = office.json(&["case", "list", "--name", "aram"]);
    let named = named[0]["reference"].as_str().unwrap().to_owned();
    let photo = dir.join("clothing.png");
    std::fs::write(&photo, gradient_png(320, 240)).unwrap();
    office.ok(&[
        "case",
        "attach",
        &named,
        photo.to_str().unwrap(),
        "--caption",
        "Clothing found with the remains",
    ]);
    let total = AT_SCALE;

    let serving = Serving::start(&office);
    let driver = Driver::start(&chromedriver);
    let client = browser(&driver, &chromium).await;
    client
        .goto(&format!("{}/?token={}", serving.base(), serving.token))
        .await
        .unwrap();
    let first = listed(&client).await;
    assert_eq!(first.len(), 100);
    assert!(first.contains(&named), "the newest change first: {first:?}");
    let count = find(&client, "p.count").await.text().await.unwrap();
    assert!(
        count.starts_with(&format!("Cases 1–100 of {total} found, of {total} cases.")),
        "{count}"
    );
    // The first page loaded again, as an analyst comes back to it: what the browser took.
    client.goto(&serving.base()).await.unwrap();
    assert_eq!(listed(&client).await, first);
    let timing = client
        .execute(
            "const n = performance.getEntriesByType('navigation')[0];
             return [n.responseStart - n.requestStart, n.loadEventEnd - n.startTime, n.transferSize];",
            vec![],
        )
        .await
        .unwrap();
    println!("first table page at {total} cases: server answered in {} ms, loaded in {} ms, {} bytes (debug build)", timing[0], timing[1], timing[2]);
    screenshot(&client, "office-table-100k.png").await;
    submit(&client, find(&client, "nav.pages a.next").await).await;
    let second = listed(&client).await;
    assert_eq!(second.len(), 100);
    assert!(second.iter().all(|r| !first.contains(r)));
    assert!(client
        .current_url()
        .await
        .unwrap()
        .as_str()
        .ends_with("page=2"));

    // A transliterated search finds the one named case among them.
    find(&client, "input[name=q]")
        .await
        .send_keys("hovhannisyan")
        .await
        .unwrap();
    submit(&client, find(&client, "form.filters button").await).await;
    assert_eq!(listed(&client).await, std::slice::from_ref(&named));

    // The map: every case in a cluster, the clusters' counts adding up to all of them.
    client
        .goto(&format!("{}/map", serving.base()))
        .await
        .unwrap();
    find(&client, "svg.map path.land").await;
    let clusters = client
        .find_all(Locator::Css("svg.map a.cluster text.count"))
        .await
        .unwrap();
    assert!(!clusters.is_empty());
    let mut sum = 0usize;
    for c in &clusters {
        sum += c.text().await.unwrap().parse::<usize>().unwrap();
    }
    let singles = client
        .find_all(Locator::Css("svg.map a.case"))
        .await
        .unwrap()
        .len();
    assert_eq!(sum + singles, total);
    let mut places = Vec::new();
    for p in client
        .find_all(Locator::Css("svg.map text.place"))
        .await
        .unwrap()
    {
        places.push(p.text().await.unwrap());
    }
    places.sort();
    assert_eq!(places, ["Gaza City", "Khan Younis"]);
    screenshot(&client, "office-map-100k.png").await;
    // A click on a cluster zooms in on it.
    let zoom = find(&client, "nav.mapnav span.zoom")
        .await
        .text()
        .await
        .unwrap();
    submit(&client, find(&client, "svg.map a.cluster").await).await;
    find(&client, "svg.map").await;
    let deeper = find(&client, "nav.mapnav span.zoom")
        .await
        .text()
        .await
        .unwrap();
    let level = |s: &str| s.trim_start_matches("zoom ").parse::<u8>().unwrap();
    assert_eq!(level(&deeper), level(&zoom) + 2);
    screenshot(&client, "office-map-zoomed.png").await;

    // The photo on its case's page, decoded by the browser.
    client
        .goto(&format!("{}/case/{named}", serving.base()))
        .await
        .unwrap();
    find(&client, "img.photo").await;
    // Decoded once complete: asked again for at most 10 s.
    let mut width = serde_json::Value::Null;
    for _ in 0..100 {
        width = client
            .execute(
                "const img = document.querySelector('img.photo');
                 return img.complete ? img.naturalWidth : -1;",
                vec![],
            )
            .await
            .unwrap();
        if width != -1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(width, 320);
    screenshot(&client, "office-case-photo.png").await;
    client.close().await.unwrap();
}
