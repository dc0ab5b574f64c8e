//! The report's chart: killed by cause, by month, drawn with plotters as SVG or PNG.
//!
//! One coloured bar series per cause (in the order of [`CAUSES`], each with its legend
//! entry), one group of four bars per month of the period. Text is laid out with DejaVu Sans,
//! embedded in the binary, so the chart looks the same on every machine and needs no system
//! font library.

use std::sync::Once;

use cairn_model::report::{cause_label, Figures, CAUSES};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

/// The colour of each cause's bars, in the order of [`CAUSES`] (colour-blind safe, from the
/// Okabe–Ito palette).
pub const COLOURS: [RGBColor; 4] = [
    RGBColor(213, 94, 0),
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(128, 128, 128),
];

/// Slots per month on the x axis: a bar for each cause and a gap.
const SLOTS: u32 = CAUSES.len() as u32 + 1;
const HEIGHT: u32 = 440;
const FONT: &str = "sans-serif";

/// The chart as an SVG document.
pub fn svg(figures: &Figures) -> Result<String, String> {
    let size = size(figures);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        draw(&root, figures)?;
    }
    Ok(out)
}

/// The chart as a PNG file's bytes.
pub fn png(figures: &Figures) -> Result<Vec<u8>, String> {
    let (w, h) = size(figures);
    let mut rgb = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        draw(&root, figures)?;
    }
    let mut out = Vec::new();
    let mut encoder = ::png::Encoder::new(&mut out, w, h);
    encoder.set_color(::png::ColorType::Rgb);
    encoder.set_depth(::png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .map_err(|e| format!("cannot encode the chart as PNG: {e}"))?;
    writer
        .write_image_data(&rgb)
        .and_then(|()| writer.finish())
        .map_err(|e| format!("cannot encode the chart as PNG: {e}"))?;
    Ok(out)
}

fn size(figures: &Figures) -> (u32, u32) {
    let months = u32::try_from(figures.months.len()).unwrap_or(u32::MAX);
    let width = months.saturating_mul(SLOTS * 12).saturating_add(160);
    (width.clamp(640, 8000), HEIGHT)
}

fn register_font() -> Result<(), String> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        result = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| "the chart's embedded font does not load; this build is damaged".into());
    });
    result
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    figures: &Figures,
) -> Result<(), String> {
    register_font()?;
    let fail = |e: DrawingAreaErrorKind<DB::ErrorType>| format!("cannot draw the chart: {e}");
    let months = &figures.months;
    let n = u32::try_from(months.len()).unwrap_or(u32::MAX);
    let top = months
        .iter()
        .flat_map(|m| m.counts.killed.by_cause.values())
        .max()
        .unwrap_or(0);
    // Label about a dozen months at most, so the labels never overlap.
    let every = months.len().div_ceil(12).max(1);
    let labels: Vec<String> = months
        .iter()
        .map(|m| short_month(&m.key).unwrap_or_else(|| m.key.clone()))
        .collect();

    root.fill(&WHITE).map_err(fail)?;
    let caption = format!(
        "Killed by cause, by month ({} to {})",
        figures.from, figures.to
    );
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FONT, 20))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(
            0u32..n.saturating_mul(SLOTS).max(1),
            // Headroom above the tallest bar, so the legend does not hide it.
            0u64..top + top / 3 + 2,
        )
        .map_err(fail)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        // A tick for every bar's slot would clutter the axis: the month labels say enough.
        .set_tick_mark_size(LabelAreaPosition::Bottom, 0)
        .x_labels(usize::try_from(n.saturating_mul(SLOTS)).unwrap_or(usize::MAX))
        .x_label_formatter(&|slot| {
            let month = (slot / SLOTS) as usize;
            if slot % SLOTS == SLOTS / 2 && month.is_multiple_of(every) {
                labels.get(month).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("killed")
        .label_style((FONT, 13))
        .draw()
        .map_err(fail)?;
    for (c, cause) in CAUSES.iter().enumerate() {
        let colour = COLOURS[c];
        let slot = |m: usize| u32::try_from(m).unwrap_or(u32::MAX) * SLOTS + c as u32;
        chart
            .draw_series(months.iter().enumerate().filter_map(|(m, month)| {
                let v = month.counts.killed.by_cause.values()[c];
                (v > 0).then(|| Rectangle::new([(slot(m), 0), (slot(m) + 1, v)], colour.filled()))
            }))
            .map_err(fail)?
            .label(cause_label(cause))
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 12, y + 6)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(fail)?;
    root.present().map_err(fail)?;
    Ok(())
}

/// `2020-09` as `Sep 2020`.
fn short_month(key: &str) -> Option<String> {
    let (year, month) = key.split_once('-')?;
    let names = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let i: usize = month.parse().ok()?;
    Some(format!("{} {year}", names.get(i.checked_sub(1)?)?))
}
