//! `cairn report`: the counts report over a period, as text, Markdown, JSON or one standalone
//! HTML page, with an optional chart (SVG or PNG).
//!
//! The counting is the model's ([`cairn_model::report`]); here the cases come from the
//! vault's encrypted summaries (no case document is loaded, so it scales to a large office
//! vault) and the figures are printed.

pub(crate) mod chart;
pub(crate) mod editions;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cairn_model::report::{
    self, cause_label, By, Counts, Figures, Options, Period, ReportCase, Taken, CAUSES,
};

use crate::cli::{
    ReportArgs, ReportBy, ReportCommand, ReportCount, ReportFormat, ReportOutput, ReportRules,
};
use crate::config::Config;
use crate::error::CliError;
use crate::output;
use crate::vault_cmd::open;

/// What the chart is written as, from the file's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChartKind {
    Svg,
    Png,
}

pub fn run(config: &Config, args: ReportArgs) -> Result<(), CliError> {
    match args.command {
        Some(ReportCommand::Publish(a)) => editions::publish(config, a),
        Some(ReportCommand::Editions(f)) => editions::list(config, f.json),
        Some(ReportCommand::Show(a)) => editions::show(config, a),
        Some(ReportCommand::Verify(a)) => editions::verify(config, a),
        None => {
            // Everything that can be wrong with the arguments is said before the passphrase
            // is asked.
            let (period, options) = rules(&args.rules)?;
            let (format, chart) = output(&args.output)?;
            if args.since.is_some() && chart.is_some() {
                return Err(CliError::usage(
                    "--since prints what changed, which has no chart: leave out --chart.",
                ));
            }
            let vault = open(config)?;
            let cases = report_cases(&vault)?;
            let taken = taken(&vault)?;
            if let Some(since) = &args.since {
                let old = editions::find(&vault, since)?;
                drop(vault);
                let now = editions::freeze_now(&cases, period, options, &taken)?;
                let changes = cairn_model::edition::changes(&old.edition, &now, false)
                    .map_err(|e| CliError::failure(e.to_string()))?;
                let text = editions::changes_text(&changes, format)?;
                return write_or_print(args.output.out.as_deref(), &text);
            }
            let places = crate::places::Places::load(config, &vault)?;
            drop(vault);
            let cases: Vec<&ReportCase> = cases.iter().map(|(c, _)| c).collect();
            let mut figures = report::count(cases, period, options, &taken);
            name_places(&mut figures, |code| {
                places.name(code).map(|name| format!("{code} {name}"))
            });
            draw(chart, &figures)?;
            let text = render(&figures, format, None)?;
            write_or_print(args.output.out.as_deref(), &text)
        }
    }
}

/// Groups by place read "KHR Khan Younis" where the place is known (their key stays the
/// code: what JSON and editions carry).
pub(crate) fn name_places(figures: &mut Figures, label: impl Fn(&str) -> Option<String>) {
    if figures.by != Some(By::Place) {
        return;
    }
    for g in figures.groups.iter_mut().flatten() {
        if let Some(named) = label(&g.key) {
            g.label = named;
        }
    }
}

/// The period and counting options the flags ask for.
pub(crate) fn rules(rules: &ReportRules) -> Result<(Period, Options), CliError> {
    let given = |v: &Option<String>, flag: &str| {
        v.clone()
            .ok_or_else(|| CliError::usage(format!("{flag} is required: give it as YYYY-MM-DD.")))
    };
    let from = day(&given(&rules.from, "--from")?, "--from")?;
    let to = day(&given(&rules.to, "--to")?, "--to")?;
    let period = Period::new(from, to).ok_or_else(|| {
        CliError::usage(format!(
            "--from {from} is after --to {to}: give the earlier day first."
        ))
    })?;
    let options = Options {
        include_alleged: rules.include_alleged || rules.count == Some(ReportCount::Alleged),
        by: rules.by.map(|by| match by {
            ReportBy::Month => By::Month,
            ReportBy::Cause => By::Cause,
            ReportBy::Place => By::Place,
        }),
    };
    Ok((period, options))
}

/// The format and chart the flags ask for.
fn output(o: &ReportOutput) -> Result<(ReportFormat, Option<(PathBuf, ChartKind)>), CliError> {
    let chart = match &o.chart {
        Some(path) => Some((path.clone(), chart_kind(path)?)),
        None => None,
    };
    let format = if o.json { ReportFormat::Json } else { o.format };
    Ok((format, chart))
}

/// Draws the chart of `figures` into the file asked for, if any.
fn draw(chart: Option<(PathBuf, ChartKind)>, figures: &Figures) -> Result<(), CliError> {
    if let Some((path, kind)) = chart {
        let bytes = match kind {
            ChartKind::Svg => chart::svg(figures).map(String::into_bytes),
            ChartKind::Png => chart::png(figures),
        }
        .map_err(CliError::failure)?;
        write_atomic(&path, &bytes)?;
    }
    Ok(())
}

/// Writes `text` to `out`, or prints it.
fn write_or_print(out: Option<&Path>, text: &str) -> Result<(), CliError> {
    match out {
        Some(path) => write_atomic(path, text.as_bytes()),
        None => output::print(text),
    }
}

/// An edition's name, printed above its figures.
pub(crate) struct Published {
    pub id: String,
    pub title: String,
    pub published_at: String,
    pub hash: String,
}

impl Published {
    pub(crate) fn line(&self) -> String {
        format!(
            "Edition {}, published {}; hash {}.",
            self.id, self.published_at, self.hash
        )
    }
}

/// The figures in `format`, as an edition when `edition` names one.
pub(crate) fn render(
    figures: &Figures,
    format: ReportFormat,
    edition: Option<&Published>,
) -> Result<String, CliError> {
    Ok(match format {
        ReportFormat::Text => text(figures, edition),
        ReportFormat::Markdown => markdown(figures, edition),
        ReportFormat::Json => {
            #[derive(serde::Serialize)]
            struct Named<'a> {
                edition: serde_json::Value,
                #[serde(flatten)]
                figures: &'a Figures,
            }
            let encoded = match edition {
                Some(e) => serde_json::to_string_pretty(&Named {
                    edition: serde_json::json!({
                        "id": e.id, "title": e.title, "published_at": e.published_at, "hash": e.hash,
                    }),
                    figures,
                }),
                None => serde_json::to_string_pretty(figures),
            };
            let mut s =
                encoded.map_err(|e| CliError::failure(format!("cannot encode JSON: {e}")))?;
            s.push('\n');
            s
        }
        ReportFormat::Html => html(
            figures,
            &chart::svg(figures).map_err(CliError::failure)?,
            edition,
        ),
    })
}

/// Every case as the report counts it, with its version (heads), from the vault's summaries
/// (no document is loaded): what `cairn report` and the office's report page count. A
/// confirmed case counts by the values the office confirmed, whatever was edited since.
pub(crate) fn report_cases(
    vault: &cairn_vault::Vault,
) -> Result<Vec<(ReportCase, Vec<String>)>, CliError> {
    Ok(vault
        .list()?
        .into_iter()
        .map(|mut c| {
            let heads = std::mem::take(&mut c.heads);
            (c.report_case(), heads)
        })
        .collect())
}

/// When the vault's data was taken (its last complete sync) and the report made (now).
pub(crate) fn taken(vault: &cairn_vault::Vault) -> Result<Taken, CliError> {
    Ok(Taken {
        made_at: time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| time::OffsetDateTime::now_utc()),
        data_as_of: vault.last_sync()?.at,
    })
}

/// The sentence every form prints beside the figures: when the data was taken and when the
/// report was made.
pub(crate) fn as_of(f: &Figures) -> String {
    match &f.data_as_of {
        Some(at) => format!(
            "Data as of {at}, this vault's last complete sync (with its own changes since); report made {}.",
            f.made_at
        ),
        None => format!(
            "Data: this vault's own records only (it has never synced); report made {}.",
            f.made_at
        ),
    }
}

pub(crate) fn day(value: &str, flag: &str) -> Result<time::Date, CliError> {
    report::parse_day(value).ok_or_else(|| {
        CliError::usage(format!(
            "{flag} `{value}` is not a date: write it as YYYY-MM-DD, for example 2020-09-27."
        ))
    })
}

pub(crate) fn chart_kind(path: &Path) -> Result<ChartKind, CliError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("svg") => Ok(ChartKind::Svg),
        Some("png") => Ok(ChartKind::Png),
        _ => Err(CliError::usage(format!(
            "cannot tell what to draw `{}` as: name the chart file .svg or .png.",
            path.display()
        ))),
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder, renamed into place:
/// a reader never sees half a file, and a failure leaves what was there.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write;
    let fail = |e: std::io::Error| {
        CliError::failure(format!(
            "cannot write {}: {e}; check the folder exists and is writable.",
            path.display()
        ))
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(fail)?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// One line of the figures: its label, its count, and how deep it is indented.
pub(crate) struct Row {
    pub label: String,
    pub count: u64,
    pub depth: usize,
}

fn row(label: impl Into<String>, count: u64, depth: usize) -> Row {
    Row {
        label: label.into(),
        count,
        depth,
    }
}

/// The figures as rows, shared by every format.
pub(crate) fn rows(f: &Figures) -> Vec<Row> {
    let mut rows = vec![row("Killed", f.killed.total, 0)];
    for (cause, n) in CAUSES.iter().zip(f.killed.by_cause.values()) {
        rows.push(row(cause_label(cause), n, 1));
    }
    rows.extend([
        row("Injured", f.injured, 0),
        row("Missing", f.missing, 0),
        row("Detained (held alive)", f.detained, 0),
        row("Remains found", f.remains, 0),
        row("All persons counted", f.persons, 0),
        row("Records counted, before linking", f.records, 1),
        row("Civilians", f.civilians.civilians, 1),
        row("Others (not civilians)", f.civilians.others, 1),
        row("Civilian or not: not known", f.civilians.not_known, 1),
        row("Identified", f.identification.identified, 1),
        row(
            "Preliminarily identified (counted apart)",
            f.identification.preliminary,
            1,
        ),
        row("Unidentified", f.identification.unidentified, 1),
    ]);
    rows
}

/// The lines beside the figures: pending, undated and future-dated cases.
pub(crate) fn apart(f: &Figures) -> Vec<Row> {
    let pending = if f.statuses.len() > 1 {
        "Alleged or under investigation (counted above)"
    } else {
        "Alleged or under investigation (not counted above)"
    };
    vec![
        row(pending, f.alleged_pending, 0),
        row("Undated (not counted above)", f.undated, 0),
        row(
            "Dated after the report was made: a typo? (not counted above)",
            f.future,
            0,
        ),
    ]
}

/// What counts, and how many records of how many persons: records the office linked count
/// once.
pub(crate) fn counted(f: &Figures) -> String {
    let statuses = if f.statuses.len() > 1 {
        "confirmed, alleged and under-investigation cases; rejected cases never count"
    } else {
        "confirmed cases only; rejected cases never count"
    };
    format!(
        "{statuses}; {} {} of {} {}, records the office linked counting once",
        f.records,
        if f.records == 1 { "record" } else { "records" },
        f.persons,
        if f.persons == 1 { "person" } else { "persons" },
    )
}

pub(crate) fn by_name(by: By) -> &'static str {
    match by {
        By::Month => "Month",
        By::Cause => "Cause",
        By::Place => "Place",
    }
}

pub(crate) const GROUP_COLUMNS: [&str; 11] = [
    "Killed",
    "Targeted strike",
    "Captivity",
    "Other violence",
    "Unknown",
    "Injured",
    "Missing",
    "Detained",
    "Remains",
    "Civilians",
    "Total",
];

pub(crate) fn group_values(c: &Counts) -> [u64; 11] {
    let [t, cap, o, u] = c.killed.by_cause.values();
    [
        c.killed.total,
        t,
        cap,
        o,
        u,
        c.injured,
        c.missing,
        c.detained,
        c.remains,
        c.civilians.civilians,
        c.total,
    ]
}

pub(crate) fn title(f: &Figures) -> String {
    format!("Cases from {} to {}", f.from, f.to)
}

fn text(f: &Figures, edition: Option<&Published>) -> String {
    let mut out = match edition {
        Some(e) => format!("{}\n{}\n\n", e.title, e.line()),
        None => String::new(),
    };
    let _ = write!(out, "{} ({})\n{}\n\n", title(f), counted(f), as_of(f));
    let all: Vec<Row> = rows(f).into_iter().chain(apart(f)).collect();
    let width = all
        .iter()
        .map(|r| r.label.chars().count() + 2 * r.depth)
        .max()
        .unwrap_or(0);
    let line = |out: &mut String, r: &Row| {
        let label = format!("{}{}", "  ".repeat(r.depth), r.label);
        let _ = writeln!(out, "  {label:width$}  {:>7}", r.count);
    };
    for r in &rows(f) {
        line(&mut out, r);
    }
    out.push('\n');
    for r in &apart(f) {
        line(&mut out, r);
    }
    if let (Some(by), Some(groups)) = (f.by, &f.groups) {
        out.push('\n');
        let width = groups
            .iter()
            .map(|g| g.label.chars().count())
            .max()
            .unwrap_or(0)
            .max(by_name(by).len());
        let _ = write!(out, "  {:width$}", by_name(by));
        for c in GROUP_COLUMNS {
            let _ = write!(out, "  {c:>w$}", w = c.len().max(5));
        }
        out.push('\n');
        for g in groups {
            let _ = write!(out, "  {:width$}", g.label);
            for (c, v) in GROUP_COLUMNS.iter().zip(group_values(&g.counts)) {
                let _ = write!(out, "  {v:>w$}", w = c.len().max(5));
            }
            out.push('\n');
        }
    }
    let _ = writeln!(out, "\n{}", f.sentence);
    out
}

fn markdown(f: &Figures, edition: Option<&Published>) -> String {
    let mut out = match edition {
        Some(e) => format!("# {}\n\n{}\n\n## ", md_escape(&e.title), e.line()),
        None => "# ".to_owned(),
    };
    let _ = write!(
        out,
        "{}\n\nCounted: {}.\n\n{}\n\n",
        title(f),
        counted(f),
        md_escape(&as_of(f))
    );
    out.push_str("| Figure | Count |\n|:--|--:|\n");
    for r in rows(f).iter().chain(&apart(f)) {
        let indent = if r.depth > 0 { "— " } else { "" };
        let _ = writeln!(out, "| {indent}{} | {} |", md_escape(&r.label), r.count);
    }
    if let (Some(by), Some(groups)) = (f.by, &f.groups) {
        let _ = write!(out, "\n| {} |", by_name(by));
        for c in GROUP_COLUMNS {
            let _ = write!(out, " {c} |");
        }
        out.push_str("\n|:--|");
        out.push_str(&"--:|".repeat(GROUP_COLUMNS.len()));
        out.push('\n');
        for g in groups {
            let _ = write!(out, "| {} |", md_escape(&g.label));
            for v in group_values(&g.counts) {
                let _ = write!(out, " {v} |");
            }
            out.push('\n');
        }
    }
    let _ = writeln!(out, "\n{}", f.sentence);
    out
}

pub(crate) fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;\
max-width:60rem;padding:0 1rem;color:#222}h1{font-size:1.5rem}table{border-collapse:collapse;\
margin:1rem 0}th,td{border:1px solid #ccc;padding:.3rem .6rem}td.n{text-align:right;\
font-variant-numeric:tabular-nums}td.sub{padding-left:1.6rem}p.sentence{font-size:1.15rem;\
border-left:4px solid #555;padding-left:1rem}figure{margin:1rem 0;overflow-x:auto}";

fn html(f: &Figures, svg: &str, edition: Option<&Published>) -> String {
    let mut out =
        String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let heading = edition.map_or_else(|| title(f), |e| e.title.clone());
    let _ = writeln!(out, "<title>{}</title>", html_escape(&heading));
    let _ = writeln!(out, "<style>{CSS}</style>\n</head>\n<body>");
    let _ = writeln!(out, "<h1>{}</h1>", html_escape(&heading));
    if let Some(e) = edition {
        let _ = writeln!(out, "<p class=\"edition\">{}</p>", html_escape(&e.line()));
        let _ = writeln!(out, "<h2>{}</h2>", html_escape(&title(f)));
    }
    let _ = writeln!(out, "<p>Counted: {}.</p>", html_escape(&counted(f)));
    let _ = writeln!(out, "<p class=\"as-of\">{}</p>", html_escape(&as_of(f)));
    let _ = writeln!(
        out,
        "<p class=\"sentence\">{}</p>",
        html_escape(&f.sentence)
    );
    out.push_str("<table>\n<tr><th>Figure</th><th>Count</th></tr>\n");
    for r in rows(f).iter().chain(&apart(f)) {
        let class = if r.depth > 0 { " class=\"sub\"" } else { "" };
        let _ = writeln!(
            out,
            "<tr><td{class}>{}</td><td class=\"n\">{}</td></tr>",
            html_escape(&r.label),
            r.count
        );
    }
    out.push_str("</table>\n");
    if let (Some(by), Some(groups)) = (f.by, &f.groups) {
        let _ = write!(out, "<table>\n<tr><th>{}</th>", by_name(by));
        for c in GROUP_COLUMNS {
            let _ = write!(out, "<th>{c}</th>");
        }
        out.push_str("</tr>\n");
        for g in groups {
            let _ = write!(out, "<tr><td>{}</td>", html_escape(&g.label));
            for v in group_values(&g.counts) {
                let _ = write!(out, "<td class=\"n\">{v}</td>");
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
    }
    let _ = writeln!(out, "<figure>\n{svg}\n</figure>\n</body>\n</html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(by: Option<By>) -> Figures {
        let period = Period::new(
            day("2020-09-27", "--from").unwrap(),
            day("2021-01-28", "--to").unwrap(),
        );
        let case = ReportCase {
            kind: "killed".into(),
            status: "confirmed".into(),
            cause: Some("captivity".into()),
            incident_date: Some("2020-10-02".into()),
            civilian: Some("yes".into()),
            place: "K<H>R".into(),
            ..ReportCase::default()
        };
        let options = Options {
            include_alleged: false,
            by,
        };
        let taken = Taken {
            made_at: time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            data_as_of: Some("2023-11-14T20:00:00Z".into()),
        };
        report::count(&[case], period.unwrap(), options, &taken)
    }

    #[test]
    fn the_chart_file_is_told_by_its_extension() {
        assert_eq!(chart_kind(Path::new("a/b.SVG")).unwrap(), ChartKind::Svg);
        assert_eq!(chart_kind(Path::new("b.png")).unwrap(), ChartKind::Png);
        for bad in ["b.gif", "b", "svg"] {
            let e = chart_kind(Path::new(bad)).unwrap_err();
            assert_eq!(e.code, crate::error::USAGE);
        }
    }

    #[test]
    fn every_format_ends_with_the_sentence() {
        let f = figures(Some(By::Place));
        let sentence = "From September 27, 2020, to January 28, 2021, the killing of 1 civilian \
                        has been recorded: 1 in captivity.";
        assert_eq!(text(&f, None).trim_end().lines().last(), Some(sentence));
        assert_eq!(markdown(&f, None).trim_end().lines().last(), Some(sentence));
        let md = markdown(&f, None);
        assert!(md.contains("| Place |") && md.contains("| K<H>R |"), "{md}");
        let when = "Data as of 2023-11-14T20:00:00Z, this vault's last complete sync (with its \
                    own changes since); report made 2023-11-14T22:13:20Z.";
        for form in [text(&f, None), md] {
            assert!(form.contains(when), "{form}");
        }
        assert!(html(&f, "", None).contains(&html_escape(when)));
    }

    #[test]
    fn the_html_page_stands_alone_and_escapes() {
        let f = figures(Some(By::Place));
        let svg = chart::svg(&f).unwrap();
        assert!(svg.starts_with("<svg"));
        for label in ["Targeted strike", "Captivity", "Other violence", "Unknown"] {
            assert!(svg.contains(label), "{label}");
        }
        let page = html(&f, &svg, None);
        assert!(page.contains("K&lt;H&gt;R") && !page.contains("K<H>R"));
        assert!(page.contains(&svg));
        for external in ["<script", "<link", " src=", " href="] {
            assert!(!page.contains(external), "{external}");
        }
    }

    #[test]
    fn the_png_chart_is_a_png() {
        let png = chart::png(&figures(None)).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }

    #[test]
    fn a_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.txt");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let e = write_atomic(&dir.path().join("no/such/dir/r.txt"), b"x").unwrap_err();
        assert_eq!(e.code, crate::error::FAILURE);
    }
}
