//! A QR code of a line (an admission, a share of the office key), as a PNG a phone's camera
//! reads off a screen or paper.

use std::path::Path;

use qrcode::{Color, EcLevel, QrCode};

use crate::error::CliError;

/// Pixels per module: a version-40 code (177 modules) is then about 740 pixels wide.
const SCALE: usize = 4;
/// The light margin readers need around a code, in modules.
const QUIET: usize = 4;

/// Writes `text` as a QR code PNG at `path`. Low error correction: an admission (about 2.4 KB)
/// fits only there, and a screen or a print is clean.
pub fn write_png(text: &str, path: &Path) -> Result<(), CliError> {
    let bytes = png(text, EcLevel::L)?;
    std::fs::write(path, bytes)
        .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))
}

/// `text` as a QR code PNG, at error correction `level`.
pub fn png(text: &str, level: EcLevel) -> Result<Vec<u8>, CliError> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), level).map_err(|e| {
        CliError::failure(format!(
            "this line ({} bytes) does not fit in a QR code ({e}); give the text instead",
            text.len()
        ))
    })?;
    let modules = code.width();
    let side = (modules + 2 * QUIET) * SCALE;
    let colors = code.to_colors();
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color == Color::Light {
            continue;
        }
        let (x, y) = ((i % modules + QUIET) * SCALE, (i / modules + QUIET) * SCALE);
        for row in y..y + SCALE {
            pixels[row * side + x..row * side + x + SCALE].fill(0);
        }
    }
    let fail = |e: &dyn std::fmt::Display| CliError::failure(format!("cannot draw a QR code: {e}"));
    let side = u32::try_from(side).map_err(|e| fail(&e))?;
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| fail(&e))?;
    writer.write_image_data(&pixels).map_err(|e| fail(&e))?;
    writer.finish().map_err(|e| fail(&e))?;
    Ok(out)
}
