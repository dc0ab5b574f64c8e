//! `cairn report` against counts computed here, independently, from a generated dataset:
//! several months, every kind and cause, confirmed, alleged, under investigation and rejected
//! cases, out-of-period, undated and non-civilian cases mixed in, detained persons among them.
//! Also the published sentence,
//! the chart (SVG parsed as XML, PNG decoded), the standalone HTML page and the usage errors.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use cairn_e2e::Device;
use serde_json::Value;

const CAUSES: [&str; 4] = ["targeted_strike", "captivity", "other_violence", "unknown"];
/// The chart's bar colour of each cause (crates/collector/src/report/chart.rs).
const COLOURS: [&str; 4] = ["#D55E00", "#0072B2", "#E69F00", "#808080"];
const LABELS: [&str; 4] = ["Targeted strike", "Captivity", "Other violence", "Unknown"];

/// A tiny linear congruential generator: the dataset is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// One generated case, as the CSV gives it (empty = unset).
#[derive(Clone, Debug)]
struct Gen {
    place: &'static str,
    kind: &'static str,
    status: &'static str,
    date: String,
    cause: &'static str,
    civilian: &'static str,
    identification: &'static str,
}

impl Gen {
    /// The day the incident starts, as YYYY-MM-DD (sorts as a date).
    fn start(&self) -> Option<&str> {
        (!self.date.is_empty()).then(|| self.date.split('/').next().unwrap_or(""))
    }
}

fn dataset(n: usize, seed: u64) -> Vec<Gen> {
    let mut rng = Lcg(seed);
    let places = ["KHR", "ABC", "DNP"];
    (0..n)
        .map(|_| {
            let kind = [
                "killed", "killed", "killed", "injured", "injured", "missing", "remains",
                "detained",
            ][rng.below(8) as usize];
            let status = [
                "confirmed",
                "confirmed",
                "confirmed",
                "confirmed",
                "alleged",
                "alleged",
                "under_investigation",
                "rejected",
            ][rng.below(8) as usize];
            // 2020-06 .. 2021-05, a tenth undated, a tenth given as a range.
            let date = if rng.below(10) == 0 {
                String::new()
            } else {
                let month = rng.below(12);
                let (year, month) = (2020 + (5 + month) / 12, (5 + month) % 12 + 1);
                let day = rng.below(28) + 1;
                let start = format!("{year}-{month:02}-{day:02}");
                if rng.below(10) == 0 {
                    format!("{start}/{year}-{month:02}-28")
                } else {
                    start
                }
            };
            let cause = if kind == "killed" || rng.below(3) == 0 {
                rng.pick(&[
                    "targeted_strike",
                    "captivity",
                    "other_violence",
                    "unknown",
                    "",
                ])
            } else {
                ""
            };
            Gen {
                place: rng.pick(&places),
                kind,
                status,
                date,
                cause,
                civilian: rng.pick(&["yes", "yes", "yes", "no", "unknown", ""]),
                identification: rng.pick(&["confirmed", "preliminary", "unidentified", ""]),
            }
        })
        .collect()
}

fn csv(cases: &[Gen]) -> String {
    let mut out = String::from(
        "place,kind,status,status_basis,incident.date,incident.cause,person.civilian,\
         identification.status\n",
    );
    for c in cases {
        let basis = match c.status {
            "confirmed" => "two independent witnesses and a forensic report",
            "rejected" => "the same person as another case",
            _ => "",
        };
        let _ = writeln!(
            out,
            "{},{},{},{basis},{},{},{},{}",
            c.place, c.kind, c.status, c.date, c.cause, c.civilian, c.identification
        );
    }
    out
}

/// The report's figures, computed here from the generated data.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    killed: [u64; 4],
    injured: u64,
    missing: u64,
    detained: u64,
    remains: u64,
    civilians: [u64; 3],
    identification: [u64; 3],
    pending: u64,
    undated: u64,
    civilian_killed: [u64; 4],
    civilian_injured: u64,
    civilian_detained: u64,
    /// Killed, civilian or not unknown.
    killed_not_known: u64,
    by_month: BTreeMap<String, [u64; 4]>,
}

fn expected(cases: &[Gen], from: &str, to: &str, include_alleged: bool) -> Expected {
    let mut e = Expected::default();
    for c in cases {
        let counted = c.status == "confirmed"
            || (include_alleged && matches!(c.status, "alleged" | "under_investigation"));
        let Some(start) = c.start() else {
            e.undated += u64::from(counted);
            continue;
        };
        if start < from || start > to {
            continue;
        }
        if matches!(c.status, "alleged" | "under_investigation") {
            e.pending += 1;
        }
        if !counted {
            continue;
        }
        let cause = CAUSES.iter().position(|x| *x == c.cause).unwrap_or(3);
        let civilian = c.civilian == "yes";
        match c.kind {
            "killed" => {
                e.killed[cause] += 1;
                e.by_month.entry(start[..7].to_string()).or_default()[cause] += 1;
                if civilian {
                    e.civilian_killed[cause] += 1;
                } else if c.civilian != "no" {
                    e.killed_not_known += 1;
                }
            }
            "injured" => {
                e.injured += 1;
                e.civilian_injured += u64::from(civilian);
            }
            "missing" => e.missing += 1,
            "detained" => {
                e.detained += 1;
                e.civilian_detained += u64::from(civilian);
            }
            _ => e.remains += 1,
        }
        e.civilians[match c.civilian {
            "yes" => 0,
            "no" => 1,
            _ => 2,
        }] += 1;
        e.identification[match c.identification {
            "confirmed" => 0,
            "preliminary" => 1,
            _ => 2,
        }] += 1;
    }
    e
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn causes(v: &Value) -> [u64; 4] {
    CAUSES.map(|c| n(&v[c]))
}

fn long_date(day: &str) -> String {
    let months = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let month: usize = day[5..7].parse().expect("month");
    let d: u32 = day[8..10].parse().expect("day");
    format!("{} {d}, {}", months[month - 1], &day[..4])
}

/// The published sentence for these figures, written out here the long way.
fn sentence(from: &str, to: &str, e: &Expected) -> String {
    let (killed, injured) = (e.civilian_killed, e.civilian_injured);
    let total: u64 = killed.iter().sum();
    let mut s = format!("From {}, to {}, ", long_date(from), long_date(to));
    if total == 0 {
        s.push_str("no killings of civilians have been recorded.");
    } else {
        if total == 1 {
            s.push_str("the killing of 1 civilian has been recorded: ");
        } else {
            let _ = write!(s, "the killings of {total} civilians have been recorded: ");
        }
        let names = [
            "from targeted strikes",
            "in captivity",
            "from other violence",
            "of unknown cause",
        ];
        let parts: Vec<String> = killed
            .iter()
            .zip(names)
            .filter(|(k, _)| **k > 0)
            .map(|(k, name)| format!("{k} {name}"))
            .collect();
        let _ = write!(s, "{}.", parts.join(", "));
    }
    let also = if total > 0 { " also" } else { "" };
    match injured {
        0 => {}
        1 => {
            let _ = write!(s, " 1 civilian injury was{also} recorded.");
        }
        k => {
            let _ = write!(s, " {k} civilian injuries were{also} recorded.");
        }
    }
    match e.killed_not_known {
        0 => {}
        1 => s.push_str(
            " 1 further killing, of a person whose civilian status is not known, is not counted.",
        ),
        k => {
            let _ = write!(
                s,
                " {k} further killings, of people whose civilian status is not known, are not counted."
            );
        }
    }
    match e.civilian_detained {
        0 => {}
        1 => s.push_str(" 1 civilian is recorded as detained."),
        k => {
            let _ = write!(s, " {k} civilians are recorded as detained.");
        }
    }
    s
}

fn report(office: &Device, from: &str, to: &str, flags: &[&str]) -> Value {
    let mut args = vec!["report", "--from", from, "--to", to, "--format", "json"];
    args.extend_from_slice(flags);
    let out = office.ok(&args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON from {args:?}: {e}: {out}"))
}

fn check(office: &Device, cases: &[Gen], from: &str, to: &str, include_alleged: bool) {
    let flags: &[&str] = if include_alleged {
        &["--include-alleged", "--by", "month"]
    } else {
        &["--by", "month"]
    };
    let r = report(office, from, to, flags);
    let e = expected(cases, from, to, include_alleged);
    let what = format!("{from}..{to}, include_alleged {include_alleged}");
    assert_eq!(
        (r["from"].as_str(), r["to"].as_str()),
        (Some(from), Some(to))
    );
    assert_eq!(causes(&r["killed"]["by_cause"]), e.killed, "{what}");
    assert_eq!(
        n(&r["killed"]["total"]),
        e.killed.iter().sum::<u64>(),
        "{what}"
    );
    assert_eq!(
        [
            n(&r["injured"]),
            n(&r["missing"]),
            n(&r["detained"]),
            n(&r["remains"])
        ],
        [e.injured, e.missing, e.detained, e.remains],
        "{what}"
    );
    assert_eq!(
        ["civilians", "others", "not_known"].map(|k| n(&r["civilians"][k])),
        e.civilians,
        "{what}"
    );
    assert_eq!(
        ["identified", "preliminary", "unidentified"].map(|k| n(&r["identification"][k])),
        e.identification,
        "{what}"
    );
    assert_eq!(n(&r["alleged_pending"]), e.pending, "{what}");
    assert_eq!(n(&r["undated"]), e.undated, "{what}");
    assert_eq!(
        causes(&r["civilian"]["killed"]["by_cause"]),
        e.civilian_killed,
        "{what}"
    );
    assert_eq!(n(&r["civilian"]["injured"]), e.civilian_injured, "{what}");
    assert_eq!(n(&r["civilian"]["detained"]), e.civilian_detained, "{what}");
    assert_eq!(
        n(&r["civilian"]["killed_not_known"]),
        e.killed_not_known,
        "{what}"
    );
    assert_eq!(
        r["sentence"].as_str(),
        Some(sentence(from, to, &e).as_str()),
        "{what}"
    );
    // The month table: every month of the period, killed by cause as computed here.
    let groups = r["groups"].as_array().expect("groups");
    for g in groups {
        let key = g["key"].as_str().expect("key");
        let want = e.by_month.get(key).copied().unwrap_or_default();
        assert_eq!(causes(&g["killed"]["by_cause"]), want, "{what}: {key}");
    }
    let months: Vec<&str> = groups.iter().filter_map(|g| g["key"].as_str()).collect();
    assert_eq!(months.first().copied(), Some(&from[..7]), "{what}");
    assert_eq!(months.last().copied(), Some(&to[..7]), "{what}");
}

#[test]
fn report_equals_counts_computed_from_the_data() {
    let office = Device::office();
    let cases = dataset(260, 0x5eed_2020);
    let file = office.home().with_file_name("cases.csv");
    std::fs::write(&file, csv(&cases)).expect("write the dataset");
    let out = office.ok(&["case", "import", file.to_str().expect("path")]);
    assert!(out.contains("260"), "{out}");
    // The mix the issue asks for is really there.
    for status in ["confirmed", "alleged", "under_investigation", "rejected"] {
        assert!(cases.iter().any(|c| c.status == status), "{status}");
    }
    assert!(cases
        .iter()
        .any(|c| c.date.is_empty() && c.status == "confirmed"));
    assert!(cases.iter().any(|c| c.date.contains('/')));
    assert!(cases.iter().any(|c| c.civilian == "no"));
    assert!(cases
        .iter()
        .any(|c| c.kind == "detained" && c.status == "confirmed" && c.civilian == "yes"));

    for include_alleged in [false, true] {
        check(&office, &cases, "2020-09-27", "2021-01-28", include_alleged);
        check(&office, &cases, "2020-06-01", "2021-05-31", include_alleged);
        check(&office, &cases, "2019-01-01", "2019-12-31", include_alleged);
    }
    // Both bounds are inclusive: a one-day period on a day that has cases.
    let day = cases
        .iter()
        .find(|c| c.status == "confirmed" && c.date.len() == 10)
        .map(|c| c.date.clone())
        .expect("a dated confirmed case");
    check(&office, &cases, &day, &day, false);
    let r = report(&office, &day, &day, &[]);
    assert!(n(&r["total"]) >= 1);

    // --by place: one row per place code, adding up to the totals.
    let r = report(&office, "2020-06-01", "2021-05-31", &["--by", "place"]);
    let groups = r["groups"].as_array().expect("groups");
    let keys: Vec<&str> = groups.iter().filter_map(|g| g["key"].as_str()).collect();
    assert_eq!(keys, ["ABC", "DNP", "KHR"]);
    let sum: u64 = groups.iter().map(|g| n(&g["total"])).sum();
    assert_eq!(sum, n(&r["total"]));
    // --by cause: the four causes, in order.
    let r = report(&office, "2020-06-01", "2021-05-31", &["--by", "cause"]);
    let keys: Vec<&str> = r["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["key"].as_str())
        .collect();
    assert_eq!(keys, CAUSES);
    // --json is --format json (made a moment apart).
    let mut short = office.json(&["report", "--from", "2020-09-27", "--to", "2021-01-28"]);
    let mut long = report(&office, "2020-09-27", "2021-01-28", &[]);
    for r in [&mut short, &mut long] {
        r.as_object_mut().expect("an object").remove("made_at");
    }
    assert_eq!(short, long);

    // The text form ends with the sentence.
    let text = office.ok(&["report", "--from", "2020-09-27", "--to", "2021-01-28"]);
    let e = expected(&cases, "2020-09-27", "2021-01-28", false);
    let want = sentence("2020-09-27", "2021-01-28", &e);
    assert_eq!(
        text.trim_end().lines().last(),
        Some(want.as_str()),
        "{text}"
    );
    let md = office.ok(&[
        "report",
        "--from",
        "2020-09-27",
        "--to",
        "2021-01-28",
        "--format",
        "markdown",
        "--by",
        "month",
    ]);
    assert!(
        md.contains("| Month |") && md.contains("| October 2020 |"),
        "{md}"
    );

    chart_svg(&office, &cases);
    chart_png(&office);
    html(&office);
}

/// The SVG parses, and draws one bar series per cause: a legend entry each, and a bar for
/// every month in which that cause has a killing.
fn chart_svg(office: &Device, cases: &[Gen]) {
    let path = office.home().with_file_name("chart.svg");
    let path_arg = path.to_str().expect("path");
    office.ok(&[
        "report",
        "--from",
        "2020-06-01",
        "--to",
        "2021-05-31",
        "--chart",
        path_arg,
    ]);
    let text = std::fs::read_to_string(&path).expect("chart written");
    let doc = roxmltree::Document::parse(&text).expect("the chart is valid XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let e = expected(cases, "2020-06-01", "2021-05-31", false);
    let rects: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect"))
        .collect();
    for (c, colour) in COLOURS.iter().enumerate() {
        let bars = rects
            .iter()
            .filter(|r| r.attribute("fill") == Some(*colour))
            .count();
        let months = e.by_month.values().filter(|m| m[c] > 0).count();
        assert_eq!(
            bars,
            months + 1,
            "{}: bars and the legend swatch",
            CAUSES[c]
        );
    }
    let texts: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect();
    for label in LABELS {
        assert!(
            texts.iter().any(|t| t == label),
            "legend {label}: {texts:?}"
        );
    }
    assert!(texts.iter().any(|t| t == "Oct 2020"), "{texts:?}");
}

fn chart_png(office: &Device) {
    let path = office.home().with_file_name("chart.png");
    office.ok(&[
        "report",
        "--from",
        "2020-06-01",
        "--to",
        "2021-05-31",
        "--chart",
        path.to_str().expect("path"),
    ]);
    let bytes = std::fs::read(&path).expect("chart written");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("a PNG header");
    let (w, h) = (reader.info().width, reader.info().height);
    assert!(w >= 640 && h == 440, "{w}x{h}");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let frame = reader.next_frame(&mut buf).expect("the PNG decodes");
    let pixels = &buf[..frame.buffer_size()];
    // Not a blank canvas: the bars' orange is there.
    assert!(pixels.chunks(3).any(|p| p == [0xD5, 0x5E, 0x00]));
}

/// One file, no external assets, the chart inline.
fn html(office: &Device) {
    let path = office.home().with_file_name("report.html");
    office.ok(&[
        "report",
        "--from",
        "2020-09-27",
        "--to",
        "2021-01-28",
        "--format",
        "html",
        "--out",
        path.to_str().expect("path"),
    ]);
    let page = std::fs::read_to_string(&path).expect("report written");
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("<svg") && page.contains("</svg>"));
    assert!(page.contains("have been recorded") || page.contains("has been recorded"));
    for external in ["<script", "<link", " src=", " href=", "url("] {
        assert!(!page.contains(external), "{external}");
    }
}

#[test]
fn report_usage_errors_are_one_sentence_and_exit_2() {
    let office = Device::office();
    let run = office.run(&["report", "--from", "2021-01-28", "--to", "2020-09-27"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("is after --to"), "{}", run.stderr);
    let run = office.run(&["report", "--from", "2021-02-30", "--to", "2021-03-01"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("YYYY-MM-DD"), "{}", run.stderr);
    let run = office.run(&[
        "report",
        "--from",
        "2021-01-01",
        "--to",
        "2021-03-01",
        "--chart",
        "x.gif",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains(".svg or .png"), "{}", run.stderr);
    let run = office.run(&[
        "report",
        "--from",
        "2021-01-01",
        "--to",
        "2021-03-01",
        "--by",
        "team",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    // An empty vault reports zeros and says there were no killings.
    let r = office.json(&["report", "--from", "2021-01-01", "--to", "2021-03-01"]);
    assert_eq!(r["killed"]["total"], 0);
    assert_eq!(
        r["sentence"],
        "From January 1, 2021, to March 1, 2021, no killings of civilians have been recorded."
    );
}

/// The scenario: two field teams record cases (alleged, or proposed for
/// investigation: confirming is the office's), sync them to the office, and the office
/// confirms and rejects; the report at the office counts what the teams recorded.
#[test]
fn report_counts_what_field_teams_synced_to_the_office() {
    use cairn_e2e::Server;
    let office = Device::office();
    let server = Server::start(&office);
    let url = server.url();
    let teams = [Device::init("T03"), Device::init("T07")];
    for (device, team) in teams.iter().zip(["T03", "T07"]) {
        server.join(&office, device, team, &url);
    }
    let cases = dataset(80, 0xc0ffee);
    let mut to_verify = Vec::new();
    for (t, device) in teams.iter().enumerate() {
        let part: Vec<Gen> = cases.iter().skip(t).step_by(2).cloned().collect();
        // A field device records them alleged (confirming and rejecting are the office's) and
        // proposes investigations with `case verify` below.
        // (Importing `under_investigation` directly on a field device is refused at the office
        // today as "it makes verifications": see the report of the #8 work.)
        let proposed: Vec<Gen> = part
            .iter()
            .map(|c| Gen {
                status: "alleged",
                ..c.clone()
            })
            .collect();
        let file = device.home().with_file_name("cases.csv");
        std::fs::write(&file, csv(&proposed)).expect("write the dataset");
        let created = device.json(&["case", "import", file.to_str().expect("path")]);
        let created = created["cases"].as_array().expect("created cases");
        assert_eq!(created.len(), part.len());
        for (c, row) in part.iter().zip(created) {
            let reference = row["reference"].as_str().expect("reference");
            match c.status {
                "confirmed" | "rejected" => to_verify.push((reference.to_string(), c.status)),
                "under_investigation" => {
                    device.ok(&[
                        "case",
                        "verify",
                        reference,
                        "--status",
                        "under_investigation",
                        "--basis",
                        "witnesses disagree on the date",
                    ]);
                }
                _ => {}
            }
        }
        let out = device.ok(&["sync"]);
        assert!(out.contains("refused 0"), "{out}");
    }
    let out = office.ok(&["sync"]);
    assert!(out.contains("refused 0"), "{out}");
    assert_eq!(office.case_count(), cases.len());
    for (reference, status) in &to_verify {
        office.ok(&[
            "case",
            "verify",
            reference,
            "--status",
            status,
            "--basis",
            "checked against the hospital register",
        ]);
    }
    for include_alleged in [false, true] {
        check(&office, &cases, "2020-09-27", "2021-01-28", include_alleged);
        check(&office, &cases, "2020-06-01", "2021-05-31", include_alleged);
    }
}

/// Issue #22: a living person held is recorded with `case new --kind detained` and, once
/// confirmed, counted apart from the missing: its own figure, row and column, and its own
/// clause of the sentence; an alleged one is pending, not counted.
#[test]
fn detained_persons_are_counted_apart_from_the_missing() {
    let office = Device::office();
    for (kind, civilian) in [
        ("detained", "yes"),
        ("detained", "yes"),
        ("detained", "no"),
        ("missing", "yes"),
    ] {
        let reference = office.new_case(&[
            "--kind",
            kind,
            "--place",
            "KHR",
            "--set",
            "incident.date=2020-10-01",
            "--set",
            &format!("person.civilian={civilian}"),
        ]);
        office.ok(&[
            "case",
            "verify",
            &reference,
            "--status",
            "confirmed",
            "--basis",
            "named on a detention list and by two witnesses",
        ]);
    }
    let alleged = office.new_case(&[
        "--kind",
        "detained",
        "--place",
        "KHR",
        "--set",
        "incident.date=2020-10-02",
    ]);
    let listed = office.json(&["case", "list", "--kind", "detained"]);
    let listed = listed.as_array().expect("a list");
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert!(listed.iter().all(|c| c["kind"] == "detained"));
    assert!(listed.iter().any(|c| c["reference"] == alleged.as_str()));

    let r = report(&office, "2020-09-27", "2021-01-28", &["--by", "month"]);
    assert_eq!(
        [
            n(&r["detained"]),
            n(&r["missing"]),
            n(&r["killed"]["total"]),
            n(&r["total"])
        ],
        [3, 1, 0, 4]
    );
    assert_eq!(n(&r["civilian"]["detained"]), 2);
    assert_eq!(n(&r["alleged_pending"]), 1);
    let october = r["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["key"] == "2020-10")
        .expect("October 2020");
    assert_eq!((n(&october["detained"]), n(&october["missing"])), (3, 1));
    let want = "From September 27, 2020, to January 28, 2021, no killings of civilians have been \
                recorded. 2 civilians are recorded as detained.";
    assert_eq!(r["sentence"], want);

    let text = office.ok(&[
        "report",
        "--from",
        "2020-09-27",
        "--to",
        "2021-01-28",
        "--by",
        "month",
    ]);
    let row = |label: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no row {label}: {text}"))
            .split_whitespace()
            .last()
            .and_then(|n| n.parse::<u64>().ok())
    };
    assert_eq!(row("Detained (held alive)"), Some(3), "{text}");
    assert_eq!(row("Missing"), Some(1), "{text}");
    // The row comes right after Missing, and the month table has a Detained column.
    let labels: Vec<&str> = text.lines().map(str::trim_start).collect();
    let missing = labels.iter().position(|l| l.starts_with("Missing"));
    assert_eq!(
        missing
            .and_then(|i| labels.get(i + 1))
            .map(|l| l.starts_with("Detained (held alive)")),
        Some(true),
        "{text}"
    );
    let header = labels
        .iter()
        .find(|l| l.starts_with("Month"))
        .unwrap_or_else(|| panic!("no month table: {text}"));
    let columns: Vec<&str> = header.split_whitespace().collect();
    let at = |c: &str| columns.iter().position(|x| *x == c);
    assert!(
        at("Missing") < at("Detained") && at("Detained").is_some(),
        "{header}"
    );
    assert_eq!(text.trim_end().lines().last(), Some(want), "{text}");
}

/// A person held who dies in captivity and is found: the office links the remains to the
/// detained case by `identifies`, as it would a missing person's, and the person counts once,
/// as identified remains, no longer as detained; `identifies` still refuses other kinds.
#[test]
fn remains_identified_as_a_detained_persons_count_once_as_identified_remains() {
    let office = Device::office();
    let detained = office.new_case(&[
        "--kind",
        "detained",
        "--place",
        "KHR",
        "--set",
        "incident.date=2020-10-01",
        "--set",
        "person.civilian=yes",
    ]);
    let remains = office.new_case(&[
        "--kind",
        "remains",
        "--place",
        "KHR",
        "--set",
        "found.at=2020-12-01T10:00:00Z",
    ]);
    let injured = office.new_case(&[
        "--kind",
        "injured",
        "--place",
        "KHR",
        "--set",
        "incident.date=2020-10-03",
    ]);
    for reference in [&detained, &remains, &injured] {
        office.ok(&[
            "case",
            "verify",
            reference,
            "--status",
            "confirmed",
            "--basis",
            "prison register and a forensic report",
        ]);
    }
    let link = |a: &str, b: &str| {
        office.run(&[
            "case",
            "link",
            a,
            b,
            "--as",
            "identifies",
            "--basis",
            "dental records held by the family",
        ])
    };
    let refused = link(&remains, &injured);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("it links remains with a missing or detained person"),
        "{}",
        refused.stderr
    );
    let run = link(&remains, &detained);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let r = report(&office, "2020-09-27", "2021-01-28", &[]);
    assert_eq!(
        [
            n(&r["records"]),
            n(&r["persons"]),
            n(&r["remains"]),
            n(&r["detained"]),
            n(&r["identification"]["identified"])
        ],
        [3, 2, 1, 0, 1]
    );
    assert_eq!(n(&r["civilian"]["detained"]), 0);
}
